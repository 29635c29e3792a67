"""Small helpers shared by test modules (not collected as tests)."""

import logging
from contextlib import contextmanager


@contextmanager
def logged(name):
    """Records of one logger at INFO, whatever logging other tests configured."""
    logger, records = logging.getLogger(name), []
    handler = logging.Handler()
    handler.emit = records.append
    level, disabled = logger.level, logger.disabled
    logger.setLevel(logging.INFO)
    logger.disabled = False
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled
