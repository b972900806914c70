"""Fuzzing vgg_patch.weights: every mutated file loads or gives one WeightsFileError line.

Small valid weights files in the three formats are mutated (bit flips,
truncations, inserted, duplicated and deleted opcodes, huge lengths and
integers, deep nesting, shared references, splices) and loaded with
``load_weights`` in a fresh interpreter per batch, under an address-space cap
and time limits (see ``vgg_fixtures.load_in_subprocess``). Every outcome must
be success or a one-line ``WeightsFileError`` naming the file: never a crash, a
hang, another exception, or a MemoryError/RecursionError turned into a message.

Time and memory must stay proportional to the file: at most 1 s + 2 s per MB
and 100 MB + 80 bytes per byte of file beyond the RSS before the load. (The
pickle is read by pure-Python ``pickle._Unpickler``, about 1-1.5 us per opcode;
an empty list or dict costs ~70 bytes for its one opcode byte. The mutated
files are 10-500 KB.)

Bounded: ``FUZZ_SECONDS`` (default 30) of fuzzing from ``FUZZ_SEED`` (default
14). Case ``i`` of a run is ``mutate(bases[...], case_seed(FUZZ_SEED, i))``, so
a failure printed as ``seed S case I`` is reproduced with :func:`case_file`.
"""
import os
import pickletools
import random
import shutil
import struct
import time

import numpy as np
import pytest

from vgg_patch import weights as wl

from vgg_fixtures import (TINY_SHAPES, load_in_subprocess, make_layer, write_indexed_npy,
                          write_python2_npy)

FUZZ_SECONDS = float(os.environ.get('FUZZ_SECONDS', '30'))
FUZZ_SEED = int(os.environ.get('FUZZ_SEED', '14'))
BATCH = 400
SECONDS, SECONDS_PER_BYTE = 1.0, 2.0 / 1e6
PEAK_BYTES, PEAK_BYTES_PER_BYTE = 100 << 20, 80

#: Opcodes whose argument is a length, and the struct format of that length.
_LENGTH_FORMATS = {
    'BINSTRING': '<i', 'BINBYTES': '<I', 'BINUNICODE': '<I', 'SHORT_BINSTRING': '<B',
    'SHORT_BINBYTES': '<B', 'SHORT_BINUNICODE': '<B', 'BINBYTES8': '<Q',
    'BINUNICODE8': '<Q', 'BYTEARRAY8': '<Q', 'FRAME': '<Q', 'LONG1': '<B', 'LONG4': '<i',
}
_ALL_OPCODES = [op.code.encode('latin1') for op in pickletools.opcodes]


def base_files(directory):
    """The valid files mutated: Python 2 original, np.save indexed, save_weights."""
    weights = {n: make_layer(n, seed=2, shapes=TINY_SHAPES) for n in TINY_SHAPES}
    paths = [write_python2_npy(os.path.join(directory, 'py2.npy'), weights),
             write_indexed_npy(os.path.join(directory, 'indexed.npy'), weights)]
    tree = {n: {0: w, 1: b} for n, (w, b) in weights.items()}
    tree['cbam_0'] = {'ChannelAttention/fc1/weights': np.ones((4, 2), np.float32)}
    paths.append(wl.save_weights(os.path.join(directory, 'own.npy'), tree))
    bases = []
    for path in paths:
        data = open(path, 'rb').read()
        with open(path, 'rb') as f:
            np.lib.format.read_magic(f)
            np.lib.format.read_array_header_1_0(f)
            start = f.tell()
            ops = [(op.name, start + pos) for op, _, pos in pickletools.genops(f)]
        bases.append((data, start, ops))
    return bases


def case_seed(seed, index):
    return seed * 1000003 + index


def _length_value(rng, fmt, size):
    top = 2 ** (8 * struct.calcsize(fmt) - (1 if fmt[-1].islower() else 0)) - 1
    return min(top, rng.choice([top, top // 2, size, size + 1, size * 2, 2 ** 31 - 1,
                                2 ** 20, rng.randrange(top + 1), 0]))


def _nest(rng):
    depth = int(10 ** rng.uniform(1, 5))
    return rng.choice([
        b'(' * depth,
        b')' + b'\x85' * depth,
        b']' * depth + b'a' * (depth - 1),
        b'}' + b'U\x01k}' * depth + b's' * depth,
        b'(' * depth + b't' * depth,
        b'K\x01' + b'\x85' * depth + b'K\x02s',
    ])


def _shared(rng):
    levels = rng.randrange(2, 40)
    kind = rng.randrange(4)
    if kind == 0:  # billion laughs with lists through the memo
        out = b']r' + struct.pack('<I', 9000)
        for i in range(levels):
            out += (b'](j' + struct.pack('<I', 9000 + i) * 2 + b'er'
                    + struct.pack('<I', 9001 + i) + b'0')
        return out
    if kind == 1:  # the same, with tuples (hashed if they become keys)
        out = b'K\x01r' + struct.pack('<I', 9000)
        for i in range(levels):
            out += b'j' + struct.pack('<I', 9000 + i) * 2 + b'\x86r' + struct.pack(
                '<I', 9001 + i)
        return out
    if kind == 2:  # random gets of existing memo entries, then container ops
        return b''.join(b'h' + bytes([rng.randrange(40)]) + rng.choice([b'a', b's', b'\x86', b''])
                        for _ in range(rng.randrange(1, 30)))
    return b'2' * levels + rng.choice([b'a', b'e', b't', b'l', b'u'])  # DUPs


def mutate(base, seed):
    """One mutated file's bytes and a description, from ``base`` and ``seed``."""
    data, start, ops = base
    rng = random.Random(seed)
    out = bytearray(data)
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        kind = rng.choice(['flip', 'flip', 'truncate', 'insert', 'duplicate', 'delete',
                           'length', 'length', 'int', 'nest', 'shared', 'splice', 'header'])
        boundaries = [pos for _, pos in ops if pos < len(out)] or [start]
        at = rng.choice(boundaries)
        if kind == 'flip':
            for _ in range(rng.randrange(1, 9)):
                pos = rng.randrange(start, len(out)) if len(out) > start else 0
                out[pos] ^= 1 << rng.randrange(8)
        elif kind == 'header':
            pos = rng.randrange(min(len(out), start))
            out[pos] = rng.randrange(256)
        elif kind == 'truncate':
            del out[rng.randrange(len(out)):]
        elif kind == 'insert':
            code = rng.choice(_ALL_OPCODES)
            out[at:at] = code + bytes(rng.randrange(256) for _ in range(rng.randrange(10)))
        elif kind in ('duplicate', 'delete'):
            i = rng.randrange(len(ops))
            j = min(len(ops) - 1, i + rng.randrange(1, 20))
            lo, hi = ops[i][1], ops[j][1]
            if kind == 'delete':
                del out[lo:hi]
            else:
                out[at:at] = out[lo:hi] * rng.choice([1, 1, 2, 50])
        elif kind == 'length':
            candidates = [(name, pos) for name, pos in ops if name in _LENGTH_FORMATS
                          and pos + 1 + struct.calcsize(_LENGTH_FORMATS[name]) <= len(out)]
            if candidates:
                name, pos = rng.choice(candidates)
                fmt = _LENGTH_FORMATS[name]
                value = _length_value(rng, fmt, len(out))
                out[pos + 1:pos + 1 + struct.calcsize(fmt)] = struct.pack(fmt, value)
        elif kind == 'int':  # a small int (shape, dtype state, index) made huge or odd
            candidates = [pos for name, pos in ops if name in ('BININT1', 'BININT2', 'BININT')
                          and pos < len(out)]
            if candidates:
                pos = rng.choice(candidates)
                width = {b'K': 2, b'M': 3, b'J': 5}.get(bytes(out[pos:pos + 1]), 1)
                value = rng.choice([0, 1, 3, 4, 255, 2 ** 31 - 1, 2 ** 62, 2 ** 63, 2 ** 64 + 3,
                                    -1, 2 ** 1000, rng.randrange(2 ** 40)])
                raw = value.to_bytes(value.bit_length() // 8 + 1, 'little', signed=True)
                out[pos:pos + width] = b'\x8a' + bytes([len(raw)]) + raw  # LONG1
        elif kind == 'nest':
            out[at:at] = _nest(rng)
        elif kind == 'shared':
            out[at:at] = _shared(rng)
        else:  # splice: a region copied over another
            a, b = sorted(rng.randrange(start, len(data)) for _ in range(2))
            c = rng.randrange(start, len(out)) if len(out) > start else start
            out[c:c + (b - a)] = data[a:b]
        steps.append('%s@%d' % (kind, at))
    return bytes(out), ' '.join(steps)


def case_file(directory, seed, index, bases=None):
    """Writes case ``index`` of the run seeded ``seed``; returns (path, description)."""
    bases = bases or base_files(directory)
    rng = random.Random(case_seed(seed, index))
    base = bases[rng.randrange(len(bases))]
    data, description = mutate(base, case_seed(seed, index) + 1)
    path = os.path.join(directory, 'case_%d.npy' % index)
    with open(path, 'wb') as f:
        f.write(data)
    return path, description


def _judge(result, path, size):
    outcome, message = result['outcome'], result['message']
    if outcome == 'ok':
        problem = None
    elif outcome != 'WeightsFileError':
        problem = '%s: %s' % (outcome, message)
    elif not message.startswith(path) or '\n' in message:
        problem = 'not one line naming the file: %r' % message[:300]
    elif 'MemoryError' in message or 'RecursionError' in message:
        problem = 'unbounded: %s' % message
    else:
        problem = None
    if problem is None and result['seconds'] > SECONDS + SECONDS_PER_BYTE * size:
        problem = 'took %.2f s for %d bytes' % (result['seconds'], size)
    if problem is None and result['peak_bytes'] > PEAK_BYTES + PEAK_BYTES_PER_BYTE * size:
        problem = 'peak RSS %d MB beyond the baseline for %d bytes' % (
            result['peak_bytes'] >> 20, size)
    return problem


@pytest.mark.tf_behavior("v2", reason="the loader is NumPy-only and its subprocesses drop the "
                         "v1 hook: a second 30 s pass would fuzz the very same code")
def test_fuzzed_weights_files_load_or_give_one_line(tmp_path):
    cases_dir = tmp_path / 'cases'
    cases_dir.mkdir()
    kept = tmp_path / 'failures'
    bases = base_files(str(tmp_path))
    deadline = time.monotonic() + FUZZ_SECONDS
    failures, outcomes, index = [], {}, 0
    while time.monotonic() < deadline and len(failures) < 10:
        batch = [case_file(str(cases_dir), FUZZ_SEED, index + k, bases) for k in range(BATCH)]
        paths = [p for p, _ in batch]
        todo_from = 0
        while todo_from < len(paths):
            results, died = load_in_subprocess(paths[todo_from:], memory_cap_mb=1024,
                                               case_seconds=5, timeout=120)
            for result in results:
                k = todo_from + result['index']
                outcomes[result['outcome']] = outcomes.get(result['outcome'], 0) + 1
                problem = _judge(result, paths[k], os.path.getsize(paths[k]))
                if problem:
                    failures.append((index + k, batch[k][1], problem))
            if died is None:
                break
            k = todo_from + died[0]
            failures.append((index + k, batch[k][1], died[1]))
            todo_from = k + 1
        for case, _, _ in failures:
            if index <= case < index + BATCH:
                kept.mkdir(exist_ok=True)
                shutil.copy(paths[case - index], kept / ('seed%d_case%d.npy' % (FUZZ_SEED, case)))
        index += BATCH
    print('fuzzed %d cases (seed %d): %s' % (index, FUZZ_SEED, outcomes))
    assert index >= BATCH and outcomes.get('ok', 0) + outcomes.get('WeightsFileError', 0) > 0
    assert not failures, '\n'.join(
        'seed %d case %d (%s): %s [kept in %s]' % (FUZZ_SEED, case, what, problem, kept)
        for case, what, problem in failures)
