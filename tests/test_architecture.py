"""The layout rules of docs/architecture.md, read from the source with ``ast``.

- no import circles among the project's modules (imports inside functions
  count too: a lazy import hides a circle from the reader, not from Python);
- no module imports a private name (``_x``) of another module, by
  ``from m import _x`` or by ``m._x``; a private *module* of the same package
  (``from slim_attention.attention import _args``) is fine: that is what the
  underscore means there;
- no source file over about 400 lines, no function over about 60 (its
  docstring not counted), unless a reason is written beside it: "Long on
  purpose: <reason>" in the file's first lines, and ``# >60 lines: <reason>``
  (or ``# long: <reason>``) on the ``def`` line or the line above it.

Tests are outside these rules: they may exercise private helpers.
"""
import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('slim_attention', 'vgg_patch')
MAX_FILE_LINES = 420
MAX_FUNCTION_LINES = 65
LONG_MARK = re.compile(r'(?i)(#\s*long:|#\s*>\s*\d+\s*lines|long on purpose)')


def _source_files():
    """(module name, path) of every project module (packages, bench, tools)."""
    out = []
    for package in PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, package)):
            dirnames[:] = sorted(d for d in dirnames if d != '__pycache__')
            for filename in sorted(filenames):
                if filename.endswith('.py'):
                    path = os.path.join(dirpath, filename)
                    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                    if rel[-1] == '__init__':
                        rel = rel[:-1]
                    out.append(('.'.join(rel), path))
    for folder in ('bench', 'tools'):
        for filename in sorted(os.listdir(os.path.join(ROOT, folder))):
            if filename.endswith('.py') and not filename.startswith('test_'):
                # bench/ and tools/ scripts import each other as top-level modules.
                out.append((filename[:-3], os.path.join(ROOT, folder, filename)))
    out.append(('run', os.path.join(ROOT, 'run.py')))
    return out


SOURCES = _source_files()
MODULES = dict(SOURCES)


def _parse(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    return text, ast.parse(text, path)


def _package_of(module, path):
    return module if path.endswith('__init__.py') else module.rpartition('.')[0]


def _resolve(module, path, node):
    """The absolute module a ``from ... import`` names (relative imports too)."""
    if not node.level:
        return node.module or ''
    base = _package_of(module, path).split('.')
    base = base[:len(base) - node.level + 1]
    return '.'.join(base + ([node.module] if node.module else []))


def _imports(module, path, tree):
    """Yields (imported project module, private names taken from it, line)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name, (), node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            for alias in node.names:
                sub = '%s.%s' % (target, alias.name) if target else alias.name
                if sub in MODULES:
                    yield sub, (), node.lineno
                elif target in MODULES:
                    private = (alias.name,) if alias.name.startswith('_') else ()
                    yield target, private, node.lineno


def _graph():
    graph = {}
    for module, path in SOURCES:
        _, tree = _parse(path)
        graph[module] = sorted({target for target, _, _ in _imports(module, path, tree)
                                if target != module})
    return graph


def test_the_walk_sees_the_project():
    graph = _graph()
    assert 'slim_attention.attention.cbam' in graph
    assert 'vgg_patch.vgg19' in graph
    assert 'slim_attention' in graph['vgg_patch.vgg19'] or any(
        t.startswith('slim_attention') for t in graph['vgg_patch.vgg19'])


def _find_cycle(graph):
    """A list of modules forming a circle, or None (iterative DFS)."""
    state = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(graph.get(child, ()))))
    return None


def test_no_import_circles():
    cycle = _find_cycle(_graph())
    assert cycle is None, 'import circle: ' + ' -> '.join(cycle)


def test_finds_a_circle_when_there_is_one():
    assert _find_cycle({'a': ['b'], 'b': ['c'], 'c': ['a']}) == ['a', 'b', 'c', 'a']
    assert _find_cycle({'a': ['b'], 'b': [], 'c': ['a', 'b']}) is None


def _private_uses(module, path, tree):
    problems = []
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.asname:
                    imported[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            for alias in node.names:
                sub = '%s.%s' % (target, alias.name) if target else alias.name
                if sub in MODULES:
                    imported[alias.asname or alias.name] = sub
                elif target in MODULES and alias.name.startswith('_') and target != module:
                    problems.append('%s:%d imports %s from %s'
                                    % (module, node.lineno, alias.name, target))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in imported and node.attr.startswith('_')
                and not node.attr.startswith('__')
                and '%s.%s' % (imported[node.value.id], node.attr) not in MODULES):
            problems.append('%s:%d uses %s.%s' % (module, node.lineno,
                                                  imported[node.value.id], node.attr))
    return problems


def test_no_module_imports_a_private_name_of_another():
    problems = []
    for module, path in SOURCES:
        _, tree = _parse(path)
        problems += _private_uses(module, path, tree)
    assert not problems, '\n'.join(problems)


def _long_functions(path):
    text, tree = _parse(path)
    lines = text.splitlines()
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            body = node.body[0]
            if (isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant)
                    and isinstance(body.value.value, str)):
                length -= body.end_lineno - body.lineno + 1  # the docstring is not code
            if length <= MAX_FUNCTION_LINES:
                continue
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            marks = lines[max(first - 2, 0):node.lineno]
            if not any(LONG_MARK.search(line) for line in marks):
                out.append('%s:%d %s is %d lines' % (os.path.relpath(path, ROOT),
                                                     node.lineno, node.name, length))
    return out


@pytest.mark.parametrize('module', sorted(MODULES))
def test_file_and_function_sizes(module):
    path = MODULES[module]
    text, _ = _parse(path)
    count = len(text.splitlines())
    head = text.splitlines()[:30]
    if count > MAX_FILE_LINES:
        assert any(LONG_MARK.search(line) for line in head), (
            '%s has %d lines (> %d) and no "Long on purpose: <reason>" near its top'
            % (os.path.relpath(path, ROOT), count, MAX_FILE_LINES))
    assert not _long_functions(path)
