"""Weights-file errors and the text of their messages (shared by the other modules).

Every failure of :mod:`vgg_patch.weights` is one :class:`WeightsFileError`
line; these helpers describe what a file holds without walking or formatting
anything a crafted file could make large.
"""
import numpy as np

__all__ = ['WeightsFileError', 'DOWNLOAD_URL', 'QUOTE_CHARS', 'describe', 'shape_text']

#: Where tensorflow-vgg's README links the ``vgg19.npy`` download.
DOWNLOAD_URL = 'https://github.com/machrisaa/tensorflow-vgg'

#: Longest name or value quoted in an error message.
QUOTE_CHARS = 60


class WeightsFileError(ValueError):
    """A weights file is missing, corrupt, unsafe or does not fit the network."""


def describe(obj):
    """A short one-line description of ``obj`` for error messages.

    Never walks containers (a crafted file's lists can be deep or shared
    exponentially) and never formats huge ints (quadratic, and limited).
    """
    if isinstance(obj, (str, bytes)):
        text = repr(obj[:QUOTE_CHARS])
        return text + ('... (%d long)' % len(obj) if len(obj) > QUOTE_CHARS else '')
    if isinstance(obj, bool) or obj is None or isinstance(obj, float):
        return repr(obj)
    if isinstance(obj, int):
        return repr(obj) if obj.bit_length() <= 64 else 'an int of %d bits' % obj.bit_length()
    if isinstance(obj, (tuple, list, dict)):
        return 'a %s of %d items' % (type(obj).__name__, len(obj))
    if isinstance(obj, np.dtype):
        return 'dtype %s' % (obj.str,)
    return 'a %s' % type(obj).__name__


def shape_text(shape):
    """A shape for messages: at most 8 dimensions, each formatted only if it is small."""
    dims = ', '.join(describe(d) for d in shape[:8])
    return '(%s%s)' % (dims, ', ... %d dimensions' % len(shape) if len(shape) > 8 else '')
