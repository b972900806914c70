"""``python -m vgg_patch.cluster``: a TensorFlow cluster of processes on this machine.

The tasks here are tiny Python scripts (no TensorFlow): each writes its pid
(and its child's) to a file, prints its TF_CONFIG and argv, and then exits,
fails or sleeps as the test asks; every test checks by pid that no process
outlives it.
"""
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vgg_patch import cluster

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TASK_SCRIPT = r"""
import json, os, subprocess, sys, time
config = json.loads(os.environ['TF_CONFIG'])
name = '%s%d' % (config['task']['type'], config['task']['index'])
folder, mode = sys.argv[1], sys.argv[2]
child = subprocess.Popen(['sleep', '300'])  # a grandchild of the launcher
with open(os.path.join(folder, name + '.pids'), 'w') as f:
    f.write('%d %d' % (os.getpid(), child.pid))
print('TF_CONFIG', json.dumps(config), flush=True)
print('ARGV', json.dumps(sys.argv[3:]), flush=True)
if config['task']['type'] == 'ps' or mode == 'hang' or (mode == 'fail' and name == 'worker0'):
    time.sleep(300)
if mode == 'fail' and name == 'worker1':
    time.sleep(0.5)
    sys.exit(3)
child.kill()
child.wait()
"""


def _plain_env():
    """This environment minus the suite's TF-behaviour switch: the tasks here are
    not TensorFlow programs (tests/v1_behavior would import TensorFlow in each)."""
    env = dict(os.environ)
    env.pop('TEST_TF_BEHAVIOR', None)
    return env


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'  # a zombie is dead
    except OSError:
        return False


def _pids(folder):
    pids = {}
    for name in os.listdir(folder):
        if name.endswith('.pids'):
            with open(os.path.join(folder, name)) as f:
                pids[name[:-5]] = [int(p) for p in f.read().split()]
    return pids


def _assert_all_gone(pids, within=5.0):
    deadline = time.monotonic() + within  # orphaned grandchildren are reaped by init
    flat = [pid for group in pids.values() for pid in group]
    while any(_alive(pid) for pid in flat) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in flat if _alive(pid)], pids


@pytest.fixture
def task_script(tmp_path):
    path = tmp_path / 'task.py'
    path.write_text(TASK_SCRIPT)
    folder = tmp_path / 'pids'
    folder.mkdir()
    return [sys.executable, str(path), str(folder)], str(folder)


def _lines(text):
    """{task name: [its lines, prefix removed]} of the merged output."""
    lines = {}
    for line in text.splitlines():
        assert line.startswith('['), line
        name, rest = line[1:].split('] ', 1)
        lines.setdefault(name, []).append(rest)
    return lines


def test_cluster_layout_tf_config_and_tf1_flags():
    spec = cluster.make_cluster(2, ps=1, chief=True, ports=[5000, 5001, 5002, 5003])
    assert spec == {'ps': ['127.0.0.1:5000'], 'chief': ['127.0.0.1:5001'],
                    'worker': ['127.0.0.1:5002', '127.0.0.1:5003']}
    assert cluster.cluster_tasks(spec) == [('ps', 0), ('chief', 0), ('worker', 0),
                                           ('worker', 1)]
    assert json.loads(cluster.tf_config(spec, cluster.Task('worker', 1))) == {
        'cluster': spec, 'task': {'type': 'worker', 'index': 1}}
    ports = [int(a.split(':')[1]) for job in cluster.make_cluster(3, ps=2).values()
             for a in job]
    assert len(set(ports)) == 5
    plain = cluster.make_cluster(2, ps=1, ports=[7, 8, 9])
    assert cluster.tf1_flags(plain, cluster.Task('ps', 0)) == [
        '--ps_hosts=127.0.0.1:7', '--worker_hosts=127.0.0.1:8,127.0.0.1:9',
        '--job_name=ps', '--task_index=0']
    assert cluster.tf1_flags(cluster.make_cluster(1, ports=[7]), cluster.Task('worker', 0)) \
        == ['--worker_hosts=127.0.0.1:7', '--job_name=worker', '--task_index=0']


@pytest.mark.parametrize('kwargs, message', [
    (dict(workers=0), 'workers must be an integer >= 1, got 0'),
    (dict(workers=2, ps=-1), 'ps must be an integer >= 0, got -1'),
    (dict(workers='2'), "workers must be an integer >= 1, got '2'"),
    (dict(workers=2, ports=[1]), 'ports must hold 2 ports'),
])
def test_bad_cluster_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cluster.make_cluster(**kwargs)


def test_bad_command_line(capsys):
    for argv, message in [(['--workers', '2'], 'no command given'),
                          (['--workers', '0', '--', 'true'], 'workers must be an integer'),
                          (['--chief', '--tf1-flags', '--', 'true'], 'TF1 flags have no chief'),
                          (['--timeout', '0', '--', 'true'], 'timeout must be a positive')]:
        with pytest.raises(SystemExit) as exit_info:
            cluster.main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match='command must be a non-empty list'):
        cluster.run_cluster('python train.py', workers=1)


def test_every_task_gets_its_tf_config_and_ps_is_stopped_when_workers_finish(task_script):
    command, folder = task_script
    output = io.StringIO()
    result = cluster.run_cluster(command + ['ok', '--flag'], workers=2, ps=1, chief=True,
                                 env=_plain_env(), output=output, timeout=60)
    assert result.returncode == 0 and result.message is None
    assert dict(result.returncodes) == {'ps 0': -signal.SIGTERM, 'chief 0': 0,
                                        'worker 0': 0, 'worker 1': 0}
    lines = _lines(output.getvalue())
    assert sorted(lines) == ['chief 0', 'ps 0', 'worker 0', 'worker 1']
    configs = {name: json.loads(next(l for l in task_lines if l.startswith('TF_CONFIG'))[10:])
               for name, task_lines in lines.items()}
    spec = configs['ps 0']['cluster']
    assert sorted(spec) == ['chief', 'ps', 'worker'] and len(spec['worker']) == 2
    for name, config in configs.items():
        assert config['cluster'] == spec
        assert '%(type)s %(index)d' % config['task'] == name
        assert 'ARGV ["--flag"]' in lines[name]
    pids = _pids(folder)
    assert sorted(pids) == ['chief0', 'ps0', 'worker0', 'worker1']
    assert [pids[n.replace(' ', '')][0] for n in result.pids] == list(result.pids.values())
    _assert_all_gone(pids)


def test_tf1_flags_are_appended(task_script):
    command, folder = task_script
    output = io.StringIO()
    result = cluster.run_cluster(command + ['ok'], workers=2, ps=1, use_tf1_flags=True,
                                 env=_plain_env(), output=output, timeout=60)
    assert result.returncode == 0
    lines = _lines(output.getvalue())
    argv = json.loads(next(l for l in lines['worker 1'] if l.startswith('ARGV'))[5:])
    spec = json.loads(next(l for l in lines['worker 1'] if l.startswith('TF_CONFIG'))[10:])
    assert argv == ['--ps_hosts=' + spec['cluster']['ps'][0],
                    '--worker_hosts=' + ','.join(spec['cluster']['worker']),
                    '--job_name=worker', '--task_index=1']
    _assert_all_gone(_pids(folder))


def test_a_failing_worker_stops_every_task_and_is_named(task_script):
    command, folder = task_script
    start = time.monotonic()
    result = cluster.run_cluster(command + ['fail'], workers=2, ps=1,
                                 env=_plain_env(), output=io.StringIO(), timeout=60)
    assert time.monotonic() - start < 30
    assert result.returncode == 3
    assert result.message == 'worker 1 failed with status 3'
    assert result.returncodes['worker 0'] == -signal.SIGTERM
    _assert_all_gone(_pids(folder))


def test_timeout_stops_every_task(task_script):
    command, folder = task_script
    result = cluster.run_cluster(command + ['hang'], workers=1, env=_plain_env(),
                                 output=io.StringIO(), timeout=1.5)
    assert result.returncode == cluster.EXIT_TIMEOUT
    assert result.message == 'timed out: tasks still running: worker 0'
    _assert_all_gone(_pids(folder))


def test_sigterm_to_the_launcher_stops_every_task(task_script):
    command, folder = task_script
    env = _plain_env()
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO, env.get('PYTHONPATH')]))
    launcher = subprocess.Popen(
        [sys.executable, '-m', 'vgg_patch.cluster', '--workers', '2', '--ps', '1', '--']
        + command + ['hang'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 30
        while len(_pids(folder)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = _pids(folder)
        assert len(pids) == 3
        launcher.send_signal(signal.SIGTERM)
        out, err = launcher.communicate(timeout=30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == cluster.EXIT_INTERRUPTED
    assert 'interrupted: every task stopped' in err
    _assert_all_gone(pids)
