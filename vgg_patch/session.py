"""Session settings for vgg_patch's graphs: optional bfloat16 on CPUs that have it.

bfloat16 here is TensorFlow's oneDNN auto-mixed-precision graph rewrite
(``auto_mixed_precision_onednn_bfloat16``): the graph, its variables,
checkpoints and npy files stay float32, and Grappler runs the convolutions,
matmuls and their gradients in bfloat16 when the session starts. It pays on
CPUs with native bfloat16 (AVX-512 BF16, AMX) and costs a little accuracy:
``bench/run.py --only bf16`` measures both, and docs/benchmarks.md has the
figures.
"""
import logging

_LOG = logging.getLogger(__name__)

#: Where Linux lists each CPU's feature flags (the CPUID bits the kernel read).
CPUINFO = '/proc/cpuinfo'

# The CPUID feature flags of native bfloat16 arithmetic, as the kernel names them
# (what oneDNN dispatches on: AVX-512 BF16, AMX-BF16), never the CPU model name.
_BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')


def cpu_bf16_flags(cpuinfo_path=CPUINFO):
    """The bfloat16 feature flags the first CPU of ``cpuinfo_path`` lists.

    Args:
      cpuinfo_path: a file in /proc/cpuinfo's format (its ``flags`` line).

    Returns:
      A tuple, a subset of ``('avx512_bf16', 'amx_bf16')``; empty where none
      or unknown (no such file, no flags line).
    """
    try:
        with open(cpuinfo_path, encoding='utf-8') as f:
            for line in f:
                if line.startswith('flags'):
                    flags = line.split(':', 1)[1].split()
                    return tuple(flag for flag in _BF16_CPU_FLAGS if flag in flags)
    except OSError:
        pass
    return ()


def cpu_has_bf16(cpuinfo_path=CPUINFO):
    """True if the CPU lists AVX-512 BF16 or AMX-BF16 (False where unknown)."""
    return bool(cpu_bf16_flags(cpuinfo_path))


def session_config(bf16=False):
    """A ``tf.compat.v1.ConfigProto`` for vgg_patch's sessions.

    Args:
      bf16: if True, turn on oneDNN's bfloat16 auto-mixed-precision rewrite
        (float32 variables, bfloat16 compute). On a CPU without native
        bfloat16 a warning is logged: it works there, but slowly.

    Returns:
      A ``tf.compat.v1.ConfigProto``; pass it as ``Session(config=...)``.

    Raises:
      TypeError: ``bf16`` is not a bool.
    """
    if not isinstance(bf16, bool):
        raise TypeError('bf16 must be True or False, got %r' % (bf16,))
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tensorflow.core.protobuf import rewriter_config_pb2  # pylint: disable=import-outside-toplevel
    config = tf.compat.v1.ConfigProto()
    if bf16:
        if not cpu_has_bf16():
            _LOG.warning('bf16: this CPU has no native bfloat16 (AVX-512 BF16/AMX); '
                         'expect it to be slower than float32')
        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
            rewriter_config_pb2.RewriterConfig.ON)
    return config
