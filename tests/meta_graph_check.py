"""The TF1 habit ``import_meta_graph``, then ``tf.gradients`` on top, in a new process.

A gradient registered by name (``tf.RegisterGradient``) must be found by a
process that did not build the graph, once it imports the module that
registers it. :func:`gradients_survive_a_new_process` builds and exports the
graph here, then differentiates the imported graph in a fresh interpreter and
compares the gradients.
"""
import json
import os

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

_IMPORT_SCRIPT = """
import json
import sys
import numpy as np
import tensorflow as tf
tf1 = tf.compat.v1
folder = sys.argv[1]
with open(folder + '/check.json') as f:
    check = json.load(f)
__import__(check['module'])  # registers the gradient
graph = tf.Graph()
with graph.as_default():
    saver = tf1.train.import_meta_graph(folder + '/model.meta')
    x = graph.get_tensor_by_name('x:0')
    y = graph.get_tensor_by_name('y:0')
    wrt = [graph.get_tensor_by_name(name) for name in check['wrt']]
    grads = tf.gradients(tf.reduce_sum(tf.sin(y)), wrt)
    with tf1.Session() as sess:
        saver.restore(sess, folder + '/model')
        got = sess.run(grads, {x: np.load(folder + '/x.npy')})
expected = np.load(folder + '/grads.npz')
for i, value in enumerate(got):
    np.testing.assert_allclose(value, expected['g%d' % i], rtol=check['rtol'],
                               atol=check['atol'])
print('same gradients')
"""


def gradients_survive_a_new_process(folder, run_in_new_processes, build, value, module,
                                    rtol=1e-5, atol=1e-7):
    """Exports ``build``'s graph, then checks its gradients in a fresh interpreter.

    Args:
      folder: the ``tmp_path`` that ``run_in_new_processes`` passes to scripts.
      run_in_new_processes: the conftest fixture.
      build: called in a new graph; makes the placeholder ``x`` (named 'x') and
        returns ``(y, wrt)``: the output (named 'y' here) and the tensors to
        differentiate ``sum(sin(y))`` by.
      value: the array fed to ``x``.
      module: what the new process imports before ``import_meta_graph``.
      rtol, atol: the tolerances of the comparison.

    Returns:
      The new process's stdout ('same gradients').
    """
    folder = str(folder)
    with tf.Graph().as_default() as graph:
        y, wrt = build()
        y = tf.identity(y, name='y')
        grads = tf.gradients(tf.reduce_sum(tf.sin(y)), wrt)
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            got = sess.run(grads, {graph.get_tensor_by_name('x:0'): value})
            saver.save(sess, os.path.join(folder, 'model'))
    np.save(os.path.join(folder, 'x.npy'), value)
    np.savez(os.path.join(folder, 'grads.npz'), **{'g%d' % i: g for i, g in enumerate(got)})
    with open(os.path.join(folder, 'check.json'), 'w') as f:
        json.dump({'module': module, 'wrt': [t.name for t in wrt], 'rtol': rtol,
                   'atol': atol}, f)
    return run_in_new_processes(_IMPORT_SCRIPT)
