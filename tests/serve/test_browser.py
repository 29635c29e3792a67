"""``xlsr app``'s page in a real browser: Debian's headless chromium, driven by selenium through Debian's
chromedriver (both named explicitly, so Selenium Manager never downloads a browser). It loads the page,
uploads a generated file, reads the verdict and p_spoof from the page and saves a screenshot.

Skipped when chromium, chromedriver or selenium are missing, unless XLSR_REQUIRE_BROWSER=1 (what
``make test-browser`` sets): then a missing browser fails the test. XLSR_SCREENSHOT_DIR: where the
screenshot is also copied (``make test-browser``: build/)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import soundfile as sf

from xlsr_helpers.evaluate.scoring import Scorer
from xlsr_helpers.serve.analysis import analyse

# Debian's paths (XLSR_CHROMIUM / XLSR_CHROMEDRIVER name others)
CHROMIUM = Path(os.environ.get("XLSR_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("XLSR_CHROMEDRIVER", "/usr/bin/chromedriver"))
REQUIRED = os.environ.get("XLSR_REQUIRE_BROWSER") == "1"
TIMEOUT = 120  # seconds for the page to load and for the analysis to appear (2 shared CPU cores)
if REQUIRED:  # make test-browser: without gradio the page fixture would skip; there it is an import error
    import gradio  # noqa: F401


def missing_browser() -> str:
    """Why the browser test cannot run here ('' when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements.txt)"
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    return f"{' and '.join(absent)} missing (apt-get install chromium chromium-driver)" if absent else ""


@pytest.fixture
def browser():
    why = missing_browser()
    if why:
        if REQUIRED:
            pytest.fail(f"XLSR_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(f"no headless browser: {why}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1600"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    yield driver
    driver.quit()


def test_the_page_in_a_browser_gives_the_verdict_and_p_spoof(browser, served_demo, calibrated_detector, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    rng = np.random.default_rng(7)
    wav = tmp_path / "my recording.wav"
    sf.write(wav, (0.1 * rng.standard_normal((int(1.7 * 48_000), 2))).astype("float32"), 48_000)
    expected = analyse(Scorer(calibrated_detector), wav, prior_spoof=0.5)

    wait = WebDriverWait(browser, TIMEOUT)
    browser.get(served_demo.local_url)
    upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#audio input[type=file]")))
    upload.send_keys(str(wav))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#audio audio, #audio .waveform-container, "
                                                                "#audio [data-testid=waveform-x]")))
    wait.until(ec.element_to_be_clickable((By.ID, "analyse"))).click()
    wait.until(lambda d: "Verdict" in d.find_element(By.ID, "verdict").text)
    verdict = browser.find_element(By.ID, "verdict").text
    p_spoof = browser.find_element(By.ID, "p-spoof").text
    facts = browser.find_element(By.ID, "facts").text
    shot = tmp_path / "xlsr-app.png"
    browser.save_screenshot(str(shot))
    if os.environ.get("XLSR_SCREENSHOT_DIR"):
        Path(os.environ["XLSR_SCREENSHOT_DIR"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(os.environ["XLSR_SCREENSHOT_DIR"]) / shot.name)

    assert f"Verdict: {'bona fide' if expected.verdict == 'bonafide' else 'spoofed'}" in verdict
    assert f"score {expected.score:.4g}" in verdict and "48,000 Hz, 2 channel(s)" in verdict
    assert f"p_spoof = {expected.p_spoof:.4f} at a spoof prior of 0.5" in p_spoof
    assert "4.250 %" in facts and "asvspoof2019-la: ODC-By 1.0" in facts
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank image
    # everything the page loaded came from the local server: no CDN, no font service
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    local = urlparse(served_demo.local_url).netloc
    assert loaded and not [u for u in loaded if urlparse(u).scheme in ("http", "https") and urlparse(u).netloc != local]



def test_a_missing_browser_fails_when_required_and_skips_otherwise(tmp_path, monkeypatch):
    """What ``make test-browser`` relies on: with XLSR_REQUIRE_BROWSER=1 a missing browser is a failure."""
    pytest.importorskip("gradio", reason="without gradio the page itself is skipped first (pip install 'xlsr-helpers[app]')")
    env = {**os.environ, "XLSR_CHROMIUM": str(tmp_path / "no-chromium"), "XLSR_REQUIRE_BROWSER": "1",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            f"{__file__}::test_the_page_in_a_browser_gives_the_verdict_and_p_spoof"]
    required = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert required.returncode == 1 and "1 error" in required.stdout, required.stdout[-2000:]
    monkeypatch.setattr(f"{__name__}.CHROMIUM", tmp_path / "no-chromium")  # not required: the reason of the skip
    assert f"XLSR_REQUIRE_BROWSER=1 but {missing_browser()}" in " ".join(required.stdout.split())
    assert missing_browser() in (f"{tmp_path / 'no-chromium'} missing (apt-get install chromium chromium-driver)",
                                 "selenium is not installed (pip install -r requirements.txt)")
