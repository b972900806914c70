"""Deploy Slim models across multiple clones and replicas (compact).

The model_deploy helper of research/slim, reduced to what a single-machine
program uses: `DeploymentConfig` says where variables, inputs, clones and the
optimizer go; `create_clones` builds the model once per clone (sharing the
variables); `optimize_clones` sums each clone's losses with the regularization
losses and returns the total loss and the gradients summed over the clones.

  config = model_deploy.DeploymentConfig(num_clones=1)
  with tf.device(config.inputs_device()):
    images, labels = LoadData(...)
  clones = model_deploy.create_clones(config, model_fn, [images, labels])
  total_loss, grads_and_vars = model_deploy.optimize_clones(clones, optimizer)
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import collections

import tensorflow.compat.v1 as tf

slim = tf.contrib.slim

__all__ = ['DeploymentConfig', 'create_clones', 'optimize_clones']

# Namedtuple used to represent a clone during deployment.
Clone = collections.namedtuple('Clone', ['outputs', 'scope', 'device'])


class DeploymentConfig(object):
  """Configuration for deploying a model with `create_clones()`."""

  def __init__(self, num_clones=1, clone_on_cpu=False, replica_id=0,
               num_replicas=1, num_ps_tasks=0, worker_job_name='worker',
               ps_job_name='ps'):
    if num_replicas > 1 and num_ps_tasks < 1:
      raise ValueError('When using replicas num_ps_tasks must be positive')
    if num_replicas > 1 or num_ps_tasks > 0:
      if not worker_job_name or not ps_job_name:
        raise ValueError('Must specify worker_job_name and ps_job_name when '
                         'using parameter server')
    if replica_id >= num_replicas:
      raise ValueError('replica_id must be less than num_replicas')
    self._num_clones = num_clones
    self._clone_on_cpu = clone_on_cpu
    self._replica_id = replica_id
    self._num_replicas = num_replicas
    self._num_ps_tasks = num_ps_tasks
    self._ps_device = '/job:' + ps_job_name if num_ps_tasks > 0 else ''
    self._worker_device = '/job:' + worker_job_name if num_ps_tasks > 0 else ''

  @property
  def num_clones(self):
    return self._num_clones

  def caching_device(self):
    """Returns the device to use for caching variables (None: no caching)."""
    if self._num_ps_tasks > 0:
      return lambda op: op.device
    return None

  def clone_device(self, clone_index):
    """Device used to create the clone and all the ops inside the clone."""
    if clone_index >= self._num_clones:
      raise ValueError('clone_index must be less than num_clones')
    device = ''
    if self._num_ps_tasks > 0:
      device += self._worker_device
    if self._clone_on_cpu:
      device += '/device:CPU:0'
    else:
      device += '/device:GPU:%d' % clone_index
    return device

  def clone_scope(self, clone_index):
    """Name scope to create the clone ('' when there is one clone)."""
    if clone_index >= self._num_clones:
      raise ValueError('clone_index must be less than num_clones')
    return 'clone_%d' % clone_index if self._num_clones > 1 else ''

  def optimizer_device(self):
    if self._num_ps_tasks > 0 or self._num_clones > 0:
      return self._worker_device + '/device:CPU:0'
    return ''

  def inputs_device(self):
    return self._worker_device + '/device:CPU:0'

  def variables_device(self):
    """Device for the variables: round-robin over the ps tasks, if any."""
    device = ''
    if self._num_ps_tasks > 0:
      device += self._ps_device
    device += '/device:CPU:0'

    class _PSDeviceChooser(object):
      """Slim device chooser for variables when using PS."""

      def __init__(self, device, tasks):
        self._device = device
        self._tasks = tasks
        self._task = 0

      def choose(self, op):
        if op.device:
          return op.device
        node_def = op if isinstance(op, tf.NodeDef) else op.node_def
        if node_def.op.startswith('Variable') or node_def.op == 'VarHandleOp':
          t = self._task
          self._task = (self._task + 1) % self._tasks
          return tf.DeviceSpec.from_string(self._device).replace(
              task=t).to_string()
        return op.device

    if not self._num_ps_tasks:
      return device
    return _PSDeviceChooser(device, self._num_ps_tasks).choose


def create_clones(config, model_fn, args=None, kwargs=None):
  """Creates `config.num_clones` clones of `model_fn(*args, **kwargs)`.

  The variables are created on `config.variables_device()` and shared by the
  clones; each clone's ops live under `config.clone_scope(i)` on
  `config.clone_device(i)`. Returns a list of `Clone` namedtuples.
  """
  clones = []
  args = args or []
  kwargs = kwargs or {}
  with slim.arg_scope([slim.model_variable, slim.variable],
                      device=config.variables_device()):
    for i in range(config.num_clones):
      with tf.name_scope(config.clone_scope(i)) as clone_scope:
        clone_device = config.clone_device(i)
        with tf.device(clone_device):
          with tf.variable_scope(tf.get_variable_scope(),
                                 reuse=True if i > 0 else None):
            outputs = model_fn(*args, **kwargs)
          clones.append(Clone(outputs, clone_scope, clone_device))
  return clones


def _gather_clone_loss(clone, num_clones, regularization_losses):
  """Sum of the clone's losses (scaled by 1/num_clones) and the regularization."""
  sum_loss = None
  clone_loss = None
  regularization_loss = None
  with tf.device(clone.device):
    all_losses = []
    clone_losses = tf.get_collection(tf.GraphKeys.LOSSES, clone.scope)
    if clone_losses:
      clone_loss = tf.add_n(clone_losses, name='clone_loss')
      if num_clones > 1:
        clone_loss = tf.div(clone_loss, 1.0 * num_clones,
                            name='scaled_clone_loss')
      all_losses.append(clone_loss)
    if regularization_losses:
      regularization_loss = tf.add_n(regularization_losses,
                                     name='regularization_loss')
      all_losses.append(regularization_loss)
    if all_losses:
      sum_loss = tf.add_n(all_losses)
  if clone_loss is not None:
    tf.summary.scalar('/'.join(filter(None, ['Losses', clone.scope,
                                             'clone_loss'])), clone_loss)
  if regularization_loss is not None:
    tf.summary.scalar('Losses/regularization_loss', regularization_loss)
  return sum_loss


def _sum_clones_gradients(clone_grads):
  """Sums the gradients of each shared variable across all clones."""
  sum_grads = []
  for grad_and_vars in zip(*clone_grads):
    # ((grad_var0_clone0, var0), ... (grad_varN_cloneN, varN))
    var = grad_and_vars[0][1]
    grads = [g for g, _ in grad_and_vars if g is not None]
    if not grads:
      continue
    sum_grad = grads[0] if len(grads) == 1 else tf.add_n(
        grads, name=var.op.name + '/sum_grads')
    sum_grads.append((sum_grad, var))
  return sum_grads


def optimize_clones(clones, optimizer, regularization_losses=None, **kwargs):
  """Computes the clones' total loss and the gradients summed over the clones.

  The regularization losses are added to the first clone's loss only.

  Returns:
    A tuple (total_loss, grads_and_vars).
  """
  grads_and_vars = []
  clones_losses = []
  num_clones = len(clones)
  if regularization_losses is None:
    regularization_losses = tf.get_collection(
        tf.GraphKeys.REGULARIZATION_LOSSES)
  for clone in clones:
    with tf.name_scope(clone.scope):
      clone_loss = _gather_clone_loss(clone, num_clones, regularization_losses)
      if clone_loss is not None:
        with tf.device(clone.device):
          clone_grad = optimizer.compute_gradients(clone_loss, **kwargs)
        clones_losses.append(clone_loss)
        grads_and_vars.append(clone_grad)
      # Only use regularization_losses for the first clone.
      regularization_losses = None
  total_loss = tf.add_n(clones_losses, name='total_loss')
  return total_loss, _sum_clones_gradients(grads_and_vars)
