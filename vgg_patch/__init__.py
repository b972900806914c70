"""vgg_patch: tensorflow-vgg's VGG19 with CBAM after pool5, loading vgg19.npy safely.

* :class:`Vgg19` -- tensorflow-vgg's class (both of its variants in one), with
  the VGG tutorial's CBAM block after pool5 (``attention='cbam'``).
* :mod:`vgg_patch.weights` -- safe, lazy reading of ``vgg19.npy`` files
  (:func:`load_weights` replaces ``np.load(..., allow_pickle=True).item()``)
  and lean writing (:func:`save_weights`); every file problem raises
  :class:`WeightsFileError` (a ValueError).
* :mod:`vgg_patch.winograd` -- 3x3 convolutions by Winograd F(2x2, 3x3), which
  ``Vgg19(winograd=True)`` uses in stages 3-5 (faster float32 on CPU).
"""
import importlib

# Where each public name lives. They are imported on first use (PEP 562), so
# that ``vgg19-cbam-train --help`` and ``import vgg_patch.weights`` do not pay
# for importing TensorFlow (about 5-10 s) before they need it.
_EXPORTS = {
    'Vgg19': 'vgg_patch.vgg19',
    'VGG_MEAN': 'vgg_patch.vgg19',
    'CONV_LAYERS': 'vgg_patch.vgg19',
    'FC_LAYERS': 'vgg_patch.vgg19',
    'ATTENTION_BLOCK_KEY': 'vgg_patch.vgg19',
    'WINOGRAD_LAYERS': 'vgg_patch.vgg19',
    'WeightsFileError': 'vgg_patch.weights',
    'WeightsFile': 'vgg_patch.weights',
    'LazyArray': 'vgg_patch.weights',
    'load_weights': 'vgg_patch.weights',
    'save_weights': 'vgg_patch.weights',
    'read_npy_tree': 'vgg_patch.weights',
    'DOWNLOAD_URL': 'vgg_patch.weights',
    'session_config': 'vgg_patch.session',
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
