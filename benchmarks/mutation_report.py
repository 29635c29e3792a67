"""Kill rate per module from mutmut's results (run `make mutate` first).

Prints killed / total per mutated module and lists the survivors; EQUIVALENT below names the
surviving mutants judged equivalent (no test can tell them apart), each with its reason.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict

# mutant name -> why it cannot be killed (behaviour identical to the original)
EQUIVALENT: dict[str, str] = {
    "xlsr_helpers.evaluate.metrics.x__as_scores__mutmut_3": "dtype None: score lists are floats; int arrays compare alike",
    "xlsr_helpers.evaluate.metrics.x__as_scores__mutmut_5": "dtype dropped: as above",
    "xlsr_helpers.evaluate.metrics.x_compute_det_curve__mutmut_28": "numpy reads the sort kind case-insensitively",
    "xlsr_helpers.evaluate.metrics.x_tdcf_curve_2019__mutmut_19": "C1 exactly 0 needs ASV rates no finite trial set gives",
    "xlsr_helpers.evaluate.metrics.x_tdcf_curve_2021__mutmut_24": "C1 exactly 0: as above",
    "xlsr_helpers.evaluate.metrics.x_cllr__mutmut_15": "errstate(over=None) changes a warning, not the value",
    "xlsr_helpers.evaluate.metrics.x_per_attack_eer__mutmut_17": "groupby sorts by default",
    "xlsr_helpers.evaluate.metrics.x_per_condition_eer__mutmut_10": "groupby sorts by default",
    "xlsr_helpers.evaluate.metrics.x_per_condition_eer__mutmut_28": "float('NAN') is nan",
    "xlsr_helpers.evaluate.metrics.x_per_condition_eer__mutmut_31": "float('NAN') is nan",
    "xlsr_helpers.evaluate.scorefile.x_read_protocol__mutmut_25": "zip strict: rows and line numbers are built together",
    "xlsr_helpers.evaluate.scorefile.x_read_protocol__mutmut_28": "zip strict: as above",
    "xlsr_helpers.evaluate.scorefile.x_read_protocol__mutmut_29": "zip strict: as above",
    "xlsr_helpers.evaluate.scorefile.x_read_asv_2021__mutmut_25": "zip strict: the lengths were compared just before",
    "xlsr_helpers.evaluate.scorefile.x_read_asv_2021__mutmut_28": "zip strict: as above",
    "xlsr_helpers.evaluate.scorefile.x_read_asv_2021__mutmut_29": "zip strict: as above",
    "xlsr_helpers.evaluate.scorefile.x_read_asv_2021__mutmut_65": "zip strict: every key has a value once the problems were raised",
    "xlsr_helpers.evaluate.scorefile.x_read_asv_2021__mutmut_68": "zip strict: every key has a value once the problems were raised",
    "xlsr_helpers.evaluate.scorefile.x_read_asv_2021__mutmut_69": "zip strict: every key has a value once the problems were raised",
    "xlsr_helpers.evaluate.scorefile.x_join_scores__mutmut_7": "merge keys default to the only shared column, utt_id",
    "xlsr_helpers.evaluate.scorefile.x_join_scores__mutmut_11": "merge keys default to the only shared column, utt_id",
    "xlsr_helpers.data.manifest.xǁManifestResultǁwrite__mutmut_13": "pandas reads to_csv(index=None) as no index",
    "xlsr_helpers.data.manifest.xǁManifestResultǁwrite__mutmut_26": "to_csv(index=None): as above",
    "xlsr_helpers.data.manifest.xǁManifestResultǁwrite__mutmut_34": "to_csv(index=None): as above",
    "xlsr_helpers.data.manifest.xǁManifestResultǁwrite__mutmut_48": "to_csv(index=None): as above",
    "xlsr_helpers.data.manifest.xǁManifestResultǁwrite__mutmut_78": "yaml.safe_dump(sort_keys=None) does not sort",
    "xlsr_helpers.data.manifest.xǁManifestResultǁcounts__mutmut_21": "concat: groupby ignores the index",
    "xlsr_helpers.data.manifest.xǁManifestResultǁcounts__mutmut_23": "concat ignore_index: as above",
    "xlsr_helpers.data.manifest.xǁManifestResultǁcounts__mutmut_24": "concat ignore_index: as above",
    "xlsr_helpers.data.manifest.xǁManifestResultǁcounts__mutmut_31": "groupby order: the table is sorted on all three keys afterwards",
    "xlsr_helpers.data.manifest.xǁManifestResultǁcounts__mutmut_33": "groupby order: as above",
    "xlsr_helpers.data.manifest.xǁManifestResultǁcounts__mutmut_40": "groupby order: as above",
    "xlsr_helpers.data.manifest.xǁManifestResultǁcounts__mutmut_63": "eval, all: last split of their corpora; NaN sorts last",
    "xlsr_helpers.data.manifest.xǁManifestResultǁcounts__mutmut_64": "split order key: as above",
    "xlsr_helpers.data.manifest.xǁManifestResultǁcounts__mutmut_65": "split order key: as above",
    "xlsr_helpers.data.manifest.xǁManifestResultǁcounts__mutmut_66": "split order key: as above",
    "xlsr_helpers.data.manifest.x_check_audio__mutmut_20": "str.split(regex=None) treats a multi-character pattern as a regex by default",
    "xlsr_helpers.data.manifest.x_check_audio__mutmut_22": "str.split regex default: as above",
    "xlsr_helpers.data.manifest.x__existing_files__mutmut_3": "a fresh directory-listing cache per call: slower, same result",
    "xlsr_helpers.data.manifest.x_audio_paths__mutmut_16": "a fresh directory-listing cache per location: slower, same result",
    "xlsr_helpers.data.manifest.x_audio_paths__mutmut_19": "listing cache: as above",
    "xlsr_helpers.data.manifest.x_audio_paths__mutmut_21": "listing cache: as above",
    "xlsr_helpers.data.manifest.x_audio_paths__mutmut_28": "zip strict: one presence set per location, built from them",
    "xlsr_helpers.data.manifest.x_audio_paths__mutmut_31": "zip strict: as above",
    "xlsr_helpers.data.manifest.x_audio_paths__mutmut_32": "zip strict: as above",
    "xlsr_helpers.data.manifest.x_check_confined__mutmut_8": "zip strict: paths and line numbers come from the same parsed rows",
    "xlsr_helpers.data.manifest.x_check_confined__mutmut_11": "zip strict: as above",
    "xlsr_helpers.data.manifest.x_check_confined__mutmut_12": "zip strict: as above",
    "xlsr_helpers.data.descriptor.x_load_descriptor__mutmut_13": "encoding=None is UTF-8 under any UTF-8 or C locale (PEP 538/540)",
    "xlsr_helpers.data.descriptor.x_load_descriptor__mutmut_15": "'UTF-8' and 'utf-8' name the same codec",
    "xlsr_helpers.data.descriptor.x_descriptor_problems__mutmut_28": "an unknown format as '' or None: neither requires a field",
    "xlsr_helpers.train.state.x_check_same_run__mutmut_36": "rmtree ignore_errors: differs only when a deletion fails",
    "xlsr_helpers.train.state.x_check_same_run__mutmut_38": "rmtree ignore_errors: as above",
    "xlsr_helpers.train.state.x_check_same_run__mutmut_39": "rmtree ignore_errors: as above",
    "xlsr_helpers.train.state.x_check_same_run__mutmut_52": "yaml.safe_dump sorts keys by default",
    "xlsr_helpers.train.state.x_last_complete_checkpoint__mutmut_30": "rmtree ignore_errors: as above",
    "xlsr_helpers.train.state.x_last_complete_checkpoint__mutmut_32": "rmtree ignore_errors: as above",
    "xlsr_helpers.train.state.x_last_complete_checkpoint__mutmut_33": "rmtree ignore_errors: as above",
    "xlsr_helpers.evaluate.scoring.x_unique_ids__mutmut_5": "the block renames only the ids counted more than once",
    "xlsr_helpers.evaluate.scoring.x_unique_ids__mutmut_22": "zip strict: one path per id, given together",
    "xlsr_helpers.evaluate.scoring.x_unique_ids__mutmut_25": "zip strict: as above",
    "xlsr_helpers.evaluate.scoring.x_unique_ids__mutmut_26": "zip strict: as above",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_48": "decoding threads: how many, not what they return",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_79": "zip strict: pool.map returns one result per file",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_82": "zip strict: as above",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_87": "zip strict: as above",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_49": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_50": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_51": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_52": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_53": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_54": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_55": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_56": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_57": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_58": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_59": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_60": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_61": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_62": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_63": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_64": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_files__mutmut_121": "progress bar arguments: what is shown, not what is scored",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_manifest__mutmut_6": "progress=None: the progress bar only",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_manifest__mutmut_11": "progress default: the progress bar only",
    "xlsr_helpers.core.fingerprint.x_manifest_fingerprint__mutmut_3": "hash_pandas_object(index=None) leaves the index out too",
    "xlsr_helpers.pipeline.params.x_absolute_paths__mutmut_37": "an absolute path joined to cwd stays itself",
    "xlsr_helpers.pipeline.params.x__absolute_part__mutmut_10": "an absolute part joined to cwd stays itself: as above",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_19": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_20": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_21": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_22": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_23": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_24": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_25": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_26": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_27": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_28": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_29": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_30": "a renamed key inside the hashed JSON: another, equally stable key",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_16": "json.dumps of a dict built in fixed order: sorting changes no key's stability",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_18": "sort_keys: as above",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_31": "sort_keys: as above",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_32": "a 17-character key: a longer file name, the same reuse",
    "xlsr_helpers.model.cache.x_collate_features__mutmut_9": "torch.tensor of Python ints is int64 (long) already",
    "xlsr_helpers.model.cache.x_collate_features__mutmut_11": "as above",
    "xlsr_helpers.model.cache.x_build_cache__mutmut_31": "shuffle=None is no shuffling",
    "xlsr_helpers.model.cache.x_build_cache__mutmut_35": "batch size 1: the same rows, slower",
    "xlsr_helpers.model.cache.x_build_cache__mutmut_36": "shuffle defaults to False",
    "xlsr_helpers.model.cache.x_build_cache__mutmut_38": "DataLoader workers: how many decode, not which rows are cached (in order either way)",
    "xlsr_helpers.model.cache.x_build_cache__mutmut_45": "the name in the disk-full message only: tested in check_disk_space",
    "xlsr_helpers.model.cache.x_build_cache__mutmut_74": "the progress bar's label only",
    "xlsr_helpers.model.cache.x_model_fingerprint__mutmut_7": "to_json_string(use_diff=None): falsy, the full config",
    "xlsr_helpers.model.cache.x_cache_key__mutmut_4": "hash_pandas_object(index=None) leaves the index out too",
    "xlsr_helpers.evaluate.score_output.x_write_scores__mutmut_13": "pandas reads to_csv(index=None) as no index",
    "xlsr_helpers.evaluate.scoring.xǁScorerǁscore_manifest__mutmut_1": "progress default: the progress bar only",
    "xlsr_helpers.data.manifest.x_find_root__mutmut_10": "roots absent or None: both mean a corpus that is not searched for",
    "xlsr_helpers.data.manifest.x_find_root__mutmut_12": "roots default: as above",
    "xlsr_helpers.data.protocol.x_parse_whitespace__mutmut_19": "zip strict: the field count was compared just before",
    "xlsr_helpers.data.protocol.x_parse_whitespace__mutmut_22": "zip strict: as above",
    "xlsr_helpers.data.protocol.x_parse_whitespace__mutmut_23": "zip strict: as above",
    "xlsr_helpers.data.manifest.x__finish_split__mutmut_17": "zip strict: rows and line numbers come from the same parser",
    "xlsr_helpers.data.manifest.x__finish_split__mutmut_20": "zip strict: as above",
    "xlsr_helpers.data.manifest.x__finish_split__mutmut_21": "zip strict: as above",
    "xlsr_helpers.evaluate.calibration.xǁCalibrationǁp_spoof__mutmut_15": "no lower clip: 1 + exp(-500) and 1 + exp(below) are both 1.0",
    "xlsr_helpers.evaluate.calibration.xǁCalibrationǁp_spoof__mutmut_21": "lower clip -501: as above",
    "xlsr_helpers.evaluate.calibration.xǁCalibrationǁp_spoof__mutmut_22": "upper clip 501: exp stays finite; p moves only below 1e-217",
    "xlsr_helpers.evaluate.calibration.x_fit_calibration__mutmut_57": "C 1e6 + 1: a slope penalty 1e-12 from the original",
    "xlsr_helpers.evaluate.calibration.x_fit_calibration__mutmut_58": "max_iter 1001: the two-parameter fit converges long before 1000",
    "xlsr_helpers.evaluate.calibration.x_reliability_table__mutmut_15": "clip's lower bound: digitize returns 0 or more",
    "xlsr_helpers.evaluate.calibration.x_reliability_table__mutmut_16": "clip's upper bound: digitize over bins - 1 inner edges returns at most bins - 1",
    "xlsr_helpers.evaluate.calibration.x_reliability_table__mutmut_28": "upper bound bins + 1: as above",
    "xlsr_helpers.evaluate.calibration.x_reliability_table__mutmut_38": "astype(None) is float64, as astype(float)",
    "xlsr_helpers.data.labels.x_label_order__mutmut_30": "said = None or {}: either differs from the order's label2id, the same refusal",
    "xlsr_helpers.evaluate.report.x_confusion_at__mutmut_18": "crosstab(dropna=None) is falsy, as dropna=False",
    "xlsr_helpers.evaluate.seeds.x_fuse__mutmut_18": "to_numpy(dtype=None) of float scores is float64; np.mean of ints is float64 too",
    "xlsr_helpers.data.channel.x__same_length__mutmut_3": "at equal length y[:n] and a pad of 0 are the same array",
    "xlsr_helpers.data.channel.x_gain__mutmut_18": "a peak of exactly 1 divided by itself is unchanged",
    "xlsr_helpers.data.channel.x_packet_loss__mutmut_12": "<= vs <: a float draw equals the drawn rate with probability 0",
    "xlsr_helpers.evaluate.seeds.x_prepare_seed_dir__mutmut_24": "symlink target_is_directory matters on Windows only; a POSIX link is the same",
    "xlsr_helpers.evaluate.seeds.x_prepare_seed_dir__mutmut_27": "target_is_directory: as above",
    "xlsr_helpers.evaluate.seeds.x_prepare_seed_dir__mutmut_32": "target_is_directory: as above",
    "xlsr_helpers.evaluate.seeds.x_summarize__mutmut_36": "zip strict: seed_scores returns one frame per seed",
    "xlsr_helpers.evaluate.seeds.x_summarize__mutmut_39": "zip strict: as above",
    "xlsr_helpers.evaluate.seeds.x_summarize__mutmut_40": "zip strict: as above",
    "xlsr_helpers.evaluate.seeds.x_summarize__mutmut_72": "astype(None) is float64, as astype(float)",
    "xlsr_helpers.evaluate.seeds.x_summarize__mutmut_108": "pandas reads to_csv(index=None) as no index",
    "xlsr_helpers.evaluate.seeds.x_summarize__mutmut_142": "pandas lower-cases to_dict's orient",
    "xlsr_helpers.data.channel.x_reverb__mutmut_4": "astype(None) is float64, as astype(np.float64)",
    "xlsr_helpers.data.augment.x__notch_filter__mutmut_64": "pass_zero dropped: scipy's default, True, as written (band-stop)",
    "xlsr_helpers.data.audio.xǁAudioErrorǁ__init____mutmut_13": "split at the first space: the line starts with the class's dotted name, so that is after 'AudioError:'",
    "xlsr_helpers.data.audio.x_load_audio__mutmut_21": "the float32 mean of one channel is that channel, bit for bit",
    "xlsr_helpers.data.audio.x_load_audio__mutmut_23": "mean(dtype=None) of float32 samples is float32, as dtype=np.float32",
    "xlsr_helpers.data.audio.x_load_audio__mutmut_25": "dtype dropped: as above",
    "xlsr_helpers.data.augment.x__notch_filter__mutmut_63": "firwin's default window is 'hamming'",
    "xlsr_helpers.data.augment.x__notch_filter__mutmut_74": "freqz's denominator defaults to 1",
    "xlsr_helpers.data.augment.x__notch_filter__mutmut_75": "fs only relabels freqz's frequencies; h (and its max) unchanged",
    "xlsr_helpers.data.augment.x__norm__mutmut_10": "peak == 1 divides by 1: same values",
    "xlsr_helpers.data.augment.x_lnl__mutmut_36": "always=None is falsy like False",
    "xlsr_helpers.data.augment.x_isd__mutmut_4": "astype(None) is float64",
    "xlsr_helpers.data.augment.x_isd__mutmut_7": "astype copies by default",
    "xlsr_helpers.data.augment.x_isd__mutmut_40": "always=None is falsy like False",
    "xlsr_helpers.data.augment.x_ssi__mutmut_5": "noise is rescaled by its own norm next: peak normalising cancels",
    "xlsr_helpers.data.augment.x_ssi__mutmut_22": "noise is rescaled by its own norm next: peak normalising cancels",
    "xlsr_helpers.data.augment.x_ssi__mutmut_36": "astype(None) is float64",
    "xlsr_helpers.data.augment.x__apply__mutmut_2": "astype(None) is float64",
    "xlsr_helpers.data.datasets.x_default_feature_extractor__mutmut_6": "feature_size=1 is Wav2Vec2FeatureExtractor's default",
    "xlsr_helpers.data.datasets.x_default_feature_extractor__mutmut_7": "sampling_rate=16000 is Wav2Vec2FeatureExtractor's default",
    "xlsr_helpers.data.datasets.x_default_feature_extractor__mutmut_8": "padding_value=0.0 is Wav2Vec2FeatureExtractor's default",
    "xlsr_helpers.data.datasets.x_default_feature_extractor__mutmut_9": "do_normalize=True is Wav2Vec2FeatureExtractor's default",
    "xlsr_helpers.data.datasets.x_parse_corpus_weights__mutmut_25": "float('NAN') is nan too",
    "xlsr_helpers.data.datasets.x_parse_corpus_weights__mutmut_39": "float('INF') is inf too",
    "xlsr_helpers.data.datasets.x_trial_weights__mutmut_6": "corpora are str names: inferred object dtype gives the same value_counts",
    "xlsr_helpers.data.datasets.x_trial_weights__mutmut_8": "corpora are str names: inferred object dtype gives the same value_counts",
    "xlsr_helpers.data.datasets.x_trial_weights__mutmut_16": "balanced shares are normalised by their sum: 2.0 each equals 1.0 each",
    "xlsr_helpers.data.datasets.x_trial_weights__mutmut_41": "shares are Python floats: the array is float64 anyway",
    "xlsr_helpers.data.datasets.x_trial_weights__mutmut_43": "shares are Python floats: the array is float64 anyway",
    "xlsr_helpers.data.datasets.xǁCorpusSamplerǁ__init____mutmut_4": "p / p.sum() is float either way; rng.choice casts p to float64",
    "xlsr_helpers.data.datasets.xǁCorpusSamplerǁ__init____mutmut_6": "p / p.sum() is float either way; rng.choice casts p to float64",
    "xlsr_helpers.data.datasets.xǁCorpusSamplerǁ__iter____mutmut_9": "replace=True is Generator.choice's default",
    "xlsr_helpers.data.channel.x_g711__mutmut_5": "soundfile upper-cases format and subtype names; scipy reads its options case-insensitively",
    "xlsr_helpers.data.channel.x_g711__mutmut_9": "name case: as above",
    "xlsr_helpers.data.channel.x_g711__mutmut_22": "name case: as above",
    "xlsr_helpers.data.channel.x_ogg__mutmut_5": "name case: as above",
    "xlsr_helpers.data.channel.x_ogg__mutmut_9": "name case: as above",
    "xlsr_helpers.data.channel.x_ogg__mutmut_21": "name case: as above",
    "xlsr_helpers.data.channel.x_mp3__mutmut_10": "name case: as above",
    "xlsr_helpers.data.channel.x__narrowband__mutmut_16": "name case: as above",
    "xlsr_helpers.data.channel.x__narrowband__mutmut_18": "name case: as above",
    "xlsr_helpers.data.channel.x_g711__mutmut_6": "< 0.5 vs <= 0.5: a float draw is exactly 0.5 with probability 0",
    "xlsr_helpers.data.channel.x_ogg__mutmut_6": "<= 0.5: as above",
    "xlsr_helpers.data.channel.x_mp3__mutmut_15": "rng.uniform(0) draws [0, 1), as uniform(0, 1)",
    "xlsr_helpers.data.channel.x_ogg__mutmut_26": "uniform(0): as above",
    "xlsr_helpers.data.channel.x_telephone__mutmut_10": "the rate argument dropped: the resampler falls back to the same 8 kHz -> 16 kHz pair",
    "xlsr_helpers.data.channel.x_g711__mutmut_32": "resample rate: as above",
    "xlsr_helpers.data.channel.x_add_noise__mutmut_22": "rng.integers(k) draws [0, k) from the same stream as integers(0, k)",
    "xlsr_helpers.data.channel.x_add_noise__mutmut_29": "astype(None) is float64, the dtype already used",
    "xlsr_helpers.data.channel.x_add_noise__mutmut_34": "astype(None): as above",
    "xlsr_helpers.data.channel.x_add_noise__mutmut_9": "< vs <= on the noise length: tiling a noise once leaves it as it is",
    "xlsr_helpers.data.channel.x_reverb__mutmut_34": "peak >= 1: a peak of exactly 1 divided by itself is unchanged",
    "xlsr_helpers.data.audio.x_resample_chunked__mutmut_18": "a tap past the reach, clipped to the Hann window's zero (about 1e-23 in float32): below any output's rounding",
    "xlsr_helpers.data.audio.x_resample_chunked__mutmut_36": "one more sample of right padding that no tap indexes",
    "xlsr_helpers.data.audio.x_resample_chunked__mutmut_47": "steps of 2 only below 2 outputs per chunk: chunk edges change no output",
    "xlsr_helpers.data.audio.x_resample_chunked__mutmut_59": "np.arange of Python ints is int64 already (numpy 2's default integer)",
    "xlsr_helpers.data.audio.x_resample_chunked__mutmut_62": "dtype dropped: as above",
    "xlsr_helpers.data.audio.x_resample_chunked__mutmut_101": "einsum subscripts in upper case: the same contraction",
    "xlsr_helpers.data.audio.x_load_audio__mutmut_28": "the float32 mean of one channel is that channel, bit for bit",
    "xlsr_helpers.data.audio.x_load_audio__mutmut_47": "dtype None: resample returns float32 for the float32 samples decoded (all paths)",
    "xlsr_helpers.data.audio.x_load_audio__mutmut_49": "dtype dropped: as above",
    "xlsr_helpers.data.audio.x_fix_length__mutmut_39": "rng.integers(k) draws [0, k) from the same stream as integers(0, k)",
    "xlsr_helpers.data.audio.x_fix_length__mutmut_46": "astype(copy=None): copies only when needed, as copy=False",
    "xlsr_helpers.data.audio.x_fix_length__mutmut_55": "astype copy flag on tile's fresh array: the same values, never sharing the input",
    "xlsr_helpers.data.audio.x_fix_length__mutmut_57": "astype copy flag: as above",
    "xlsr_helpers.data.audio.x_fix_length__mutmut_65": "astype copy flag: as above",
    "xlsr_helpers.data.audio.x_fix_length__mutmut_67": "astype copy flag on pad's fresh array: as above",
    "xlsr_helpers.data.audio.x_fix_length__mutmut_69": "astype copy flag: as above",
    "xlsr_helpers.data.audio.x_fix_length__mutmut_76": "astype copy flag: as above",
    "xlsr_helpers.data.audio.x_window_starts__mutmut_1": "n == window: range(0, 1, hop) is [0], already flush: [0] either way",
    "xlsr_helpers.data.audio.x_check_file__mutmut_12": "float('NAN') is nan",
    "xlsr_helpers.data.audio.x_check_file__mutmut_17": "float('NAN') is nan",
    "xlsr_helpers.data.audio.x_check_file__mutmut_22": "float('NAN') is nan",
    "xlsr_helpers.data.audio.x_check_files__mutmut_2": "thread-pool size: the rows come back in order whatever the workers",
    "xlsr_helpers.data.audio.x_check_files__mutmut_11": "to_csv(index=None) writes no index, as index=False",
    "xlsr_helpers.data.audio.x_check_files__mutmut_19": "thread-pool size: as above",
    "xlsr_helpers.data.audio.x_check_files__mutmut_29": "columns None: check_file's rows have CHECK_COLUMNS' keys in that order",
    "xlsr_helpers.data.audio.x_check_files__mutmut_31": "columns dropped: as above",
    "xlsr_helpers.data.audio.x_check_files__mutmut_51": "to_csv(header=None) writes no header, as header=False",
    "xlsr_helpers.data.audio.x_check_files__mutmut_52": "to_csv(index=None) writes no index, as index=False",
}


def results() -> list[tuple[str, str]]:
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], capture_output=True, text=True)
    pairs = re.findall(r"^\s*([\w.]+__mutmut_\d+): (\w[\w ]*)$", out.stdout, re.M)
    if not pairs:
        sys.exit(f"no mutmut results found; run `make mutate` first\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return pairs


def main() -> int:
    per_module: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    status_of = dict(results())
    for name, status in status_of.items():
        m = re.match(r"(.+?)\.x[_ǁ]", name)
        module = m.group(1) if m else name.split("__")[0]
        if status == "survived" and name in EQUIVALENT:
            status = "equivalent"
        per_module[module][status] += 1
        if status in ("survived", "no tests"):
            survivors[module].append(f"{name} ({status})")
    print(f"{'module':<32} {'killed':>7} {'equiv.':>7} {'run':>6} {'rate':>7} {'with eq.':>9}")
    for module, c in sorted(per_module.items()):
        run = sum(c.values()) - c["skipped"] - c["not checked"]
        if run == 0:
            continue  # not run this time
        killed = c["killed"] + c["timeout"]
        not_run = f"  ({c['not checked']} not run)" if c["not checked"] else ""
        print(f"{module:<32} {killed:>7} {c['equivalent']:>7} {run:>6} {100 * killed / run:>6.1f}% "
              f"{100 * (killed + c['equivalent']) / run:>8.1f}%{not_run}")
    for module, names in sorted(survivors.items()):
        print(f"\nsurvivors in {module} ({len(names)}):")
        print("\n".join(f"  {n}" for n in names))
    stale = [n for n in EQUIVALENT if status_of.get(n, "not checked") not in ("survived", "not checked")]
    if stale:  # killed now, or the function changed and its mutants were renumbered: check each again
        print("\nEQUIVALENT entries that did not survive this run (recheck or remove):\n" + "\n".join(f"  {n}" for n in stale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
