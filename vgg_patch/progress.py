"""A small text progress bar for long loops (stderr; no third-party dependency).

On a terminal the bar redraws in place (``\\r``) at most ten times a second. When
the stream is not a terminal (a log file, a CI job, a test) it writes a full
line at every tenth of the work instead, so logs stay short and readable.
"""
import sys
import time


def format_duration(seconds):
    """Formats seconds as ``H:MM:SS`` or ``M:SS``."""
    seconds = int(max(0, round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%d:%02d:%02d" % (hours, minutes, secs)
    return "%d:%02d" % (minutes, secs)


class ProgressBar(object):
    """Draws ``prefix |#####-----| done/total metrics rate eta`` on a stream.

    Args:
      total: number of steps of the loop (> 0).
      prefix: text before the bar, e.g. ``"epoch 2/4"``.
      stream: file to write to; default ``sys.stderr``.
      unit: name of what ``rate`` counts, shown as ``<rate> <unit>/s``.
      width: bar width in characters.
      min_interval: minimum seconds between redraws on a terminal.
      tty: force terminal (True) or line (False) mode; default: ask the stream.
    """

    def __init__(self, total, prefix="", stream=None, unit="img", width=24,
                 min_interval=0.1, tty=None):
        if int(total) < 1:
            raise ValueError("total must be a positive int, got %r" % (total,))
        self.total = int(total)
        self.prefix = prefix
        self.stream = stream if stream is not None else sys.stderr
        self.unit = unit
        self.width = int(width)
        self.min_interval = float(min_interval)
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self._start = time.time()
        self._last_draw = 0.0
        self._next_line_tenth = 1
        self._line_len = 0
        self._pending = None  # last update not written (line mode)
        self.closed = False

    def render(self, done, metrics=None, rate=None):
        """Returns the bar's text for ``done`` steps (no drawing)."""
        done = min(max(int(done), 0), self.total)
        filled = int(self.width * done / self.total)
        parts = []
        if self.prefix:
            parts.append(self.prefix)
        parts.append("|%s%s| %d/%d" % ("#" * filled, "-" * (self.width - filled),
                                       done, self.total))
        for name, value in (metrics or {}).items():
            parts.append("%s %.4g" % (name, value) if isinstance(value, float)
                         else "%s %s" % (name, value))
        if rate is not None:
            parts.append("%.1f %s/s" % (rate, self.unit))
        elapsed = time.time() - self._start
        if 0 < done < self.total:
            parts.append("eta %s" % format_duration(elapsed * (self.total - done) / done))
        else:
            parts.append("%s" % format_duration(elapsed))
        return " ".join(parts)

    def update(self, done, metrics=None, rate=None):
        """Shows progress: ``done`` of ``total`` steps, with optional metrics.

        Args:
          done: steps completed so far.
          metrics: ordered mapping of name to value (floats use 4 digits).
          rate: items per second, shown with ``unit``.
        """
        if self.closed:
            return
        now = time.time()
        if self.tty:
            if done < self.total and now - self._last_draw < self.min_interval:
                return
            text = self.render(done, metrics, rate)
            pad = max(0, self._line_len - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._line_len = len(text)
        else:
            tenth = int(10 * min(done, self.total) / self.total)
            if tenth < self._next_line_tenth and done < self.total:
                self._pending = (done, metrics, rate)
                return
            self._next_line_tenth = tenth + 1
            self._pending = None
            self.stream.write(self.render(done, metrics, rate) + "\n")
        self._last_draw = now
        self.stream.flush()

    def close(self):
        """Ends the bar: a newline (terminal), or the last unwritten state (lines).

        Further updates are ignored.
        """
        if not self.closed:
            if self.tty and self._line_len:
                self.stream.write("\n")
            elif not self.tty and self._pending is not None:
                self.stream.write(self.render(*self._pending) + "\n")
            self.stream.flush()
        self.closed = True
