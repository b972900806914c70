"""Whole TF1 programs run unchanged but for their import lines.

``tests/tf1_programs/research_slim`` is a compact research/slim-style program
(dataset module over TFRecords, nets factory over ``tf.contrib.slim.nets``,
``model_deploy``-style clones, ``train_image_classifier.py`` with
``slim.learning.train``, ``eval_image_classifier.py`` with
``slim.evaluation.evaluate_once``), written as TF1 code whose only change is
``import tensorflow.compat.v1 as tf`` + ``tf.disable_v2_behavior()`` +
``slim_attention.install_contrib_alias()``. Each script runs in its own
process, from the program's folder, as its users run it.
"""
import os
import re
import subprocess
import sys

import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESEARCH_SLIM = os.path.join(REPO, 'tests', 'tf1_programs', 'research_slim')

# ResNet-50 has 3 + 4 + 6 + 3 bottlenecks; slim.nets' resnet_v1_50 puts CBAM
# in each (the factory's --attention_module=cbam_block, kobiso's name).
BOTTLENECKS = 16
CBAM_WEIGHTS = re.compile(
    r'^resnet_v1_50/block\d/unit_\d+/bottleneck_v1/CBAM/'
    r'ChannelAttention/fc1/weights$')


def _run_script(script, *flags):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [REPO, env.get('PYTHONPATH')]))
    proc = subprocess.run([sys.executable, script] + list(flags),
                          cwd=RESEARCH_SLIM, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, '%s failed:\n%s' % (script, proc.stderr[-4000:])
    return proc.stdout


def test_research_slim_program_trains_resnet_v1_50_cbam_then_evaluates(tmp_path):
    data_dir = str(tmp_path / 'colors')
    train_dir = str(tmp_path / 'train')
    model = ['--model_name=resnet_v1_50', '--attention_module=cbam_block',
             '--dataset_name=colors', '--dataset_dir=' + data_dir]

    _run_script('download_and_convert_colors.py', '--dataset_dir=' + data_dir)
    records = sorted(os.listdir(data_dir))
    assert records == ['colors_train_00000-of-00002.tfrecord',
                       'colors_train_00001-of-00002.tfrecord',
                       'colors_validation_00000-of-00002.tfrecord',
                       'colors_validation_00001-of-00002.tfrecord',
                       'labels.txt']

    # 64x64: at 32x32 ResNet-50's last block is 1x1, and batch norm over a
    # batch of 2 single pixels blows the loss up (plain tf-slim resnet too).
    # Plain SGD: no optimizer slots, so each checkpoint holds the weights once.
    _run_script('train_image_classifier.py', '--train_dir=' + train_dir,
                '--dataset_split_name=train', '--clone_on_cpu=True',
                '--optimizer=sgd',
                '--batch_size=2', '--train_image_size=64',
                '--max_number_of_steps=2', '--num_readers=1',
                '--num_preprocessing_threads=1', *model)
    checkpoint = tf.train.latest_checkpoint(train_dir)
    assert checkpoint is not None and checkpoint.endswith('model.ckpt-2')
    assert [f for f in os.listdir(train_dir) if f.startswith('events.out')]
    names = dict(tf.train.list_variables(checkpoint))
    assert tf.train.load_variable(checkpoint, 'global_step') == 2
    cbam = sorted(name for name in names if CBAM_WEIGHTS.match(name))
    assert len(cbam) == BOTTLENECKS, cbam
    assert 'resnet_v1_50/block1/unit_1/bottleneck_v1/CBAM/SpatialAttention/' \
           'BatchNorm/moving_mean' in names
    assert names['resnet_v1_50/logits/weights'] == [1, 1, 2048, 3]

    out = _run_script('eval_image_classifier.py', '--checkpoint_path=' + train_dir,
                      '--eval_dir=' + str(tmp_path / 'eval'),
                      '--dataset_split_name=validation', '--batch_size=2',
                      '--eval_image_size=64', '--num_preprocessing_threads=1',
                      *model)
    accuracy = re.search(r'^eval/Accuracy: ([0-9.]+)$', out, re.M)
    assert accuracy is not None, out
    assert 0.0 <= float(accuracy.group(1)) <= 1.0
    # slim.metrics and tf.metrics agree on the same predictions.
    assert re.search(r'^eval/tf_metrics_accuracy: %s$' % re.escape(accuracy.group(1)),
                     out, re.M), out
    assert re.search(r'^global_step: 2$', out, re.M), out

