"""Ctrl-C and SIGTERM: a request to stop, checked between steps and phases."""
import logging
import signal
import threading

from vgg_patch.cli.common import Interrupted

logger = logging.getLogger("vgg_patch.train")


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps and phases (main thread only).

    The trainer checks it between training steps, between validation batches,
    after building the graph, after initialising or restoring, and around the
    export. A second signal raises ``KeyboardInterrupt`` at once.
    """

    def __init__(self):
        self.signum = None
        self._previous = {}

    def handle(self, signum, frame):  # pylint: disable=unused-argument
        """The signal handler (public so tests can deliver a signal by hand)."""
        if self.signum is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt(
                "second %s: stopped at once, without saving; the newest complete "
                "checkpoint is intact and the next run resumes from it"
                % signal.Signals(signum).name)
        self.signum = signum
        logger.warning("%s received: stopping at the end of this step or phase, saving "
                       "a checkpoint if training has begun (press Ctrl-C again to stop "
                       "at once)",
                       signal.Signals(signum).name)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    @property
    def requested(self):
        return self.signum is not None


def stop_requested(stop):
    """True if ``stop`` (a :class:`StopRequest`, anything with ``requested``, or
    None for never) asks to stop."""
    return stop is not None and stop.requested


def check_stop(stop, when):
    """Raises ``Interrupted`` (nothing saved) if a stop was requested before training."""
    if stop_requested(stop):
        raise Interrupted("interrupted %s, before any training step: nothing to save; "
                          "run the same command again to start or resume" % when)
