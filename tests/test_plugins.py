"""Plugins (searchlm/plugins.py): backends register by name through pluggy hooks, the built-ins the same way; an
installed package adds them through an entry point in the `searchlm` group, found by importlib.metadata.

"Installed" here is what pip leaves in a site folder: the plugin's module beside a `.dist-info` holding METADATA and
entry_points.txt (written from tests/plugin_pkg/pyproject.toml), on the path of a fresh `python -m searchlm`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import registered
from searchlm import hookimpl
from searchlm.cli import app
from searchlm.errors import InputError, ModelError
from searchlm.plugins import embedders, generators, get_plugins, keyword_indexes, rerankers, stores

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "tests" / "plugin_pkg"
FILES = {
    "short.md": "# Bees\n\nBees make honey.\n",
    "middle.md": "# Bee colonies\n\nA colony of bees makes honey from nectar and stores it in wax combs.\n",
    "long.md": "# How bees make honey\n\nBees make honey: worker bees collect nectar from flowers, carry it to the "
               "hive, and pass it from bee to bee, which adds enzymes; then they fan it with their wings until most "
               "of the water evaporates, and cap the honey in wax combs where it keeps for years.\n",
}


def install(site: Path, project: Path = PLUGIN) -> Path:
    """Install `project` (a pyproject with `searchlm` entry points and py-modules) into `site` as pip would."""
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    site.mkdir(parents=True, exist_ok=True)
    for module in tomllib.loads((project / "pyproject.toml").read_text())["tool"]["setuptools"]["py-modules"]:
        shutil.copy(project / f"{module}.py", site)
    info = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    points = meta["entry-points"]["searchlm"]
    (info / "entry_points.txt").write_text("[searchlm]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    return site


def searchlm(site: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m searchlm ARGS` in a fresh process with `site` on its path, as an installed package is."""
    path = os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "searchlm", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"})


# -- an installed plugin, used by name ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bees(tmp_path_factory, embedder):
    """Settings of a three-document index, one passage each: short, middling and long."""
    from conftest import write_files
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import Settings

    root = tmp_path_factory.mktemp("bees")
    settings = Settings(home=root / "indexes", name="bees")
    index_folder(write_files(root / "corpus", FILES), settings, embedder=embedder)
    return settings


def test_an_installed_plugin_reranks_a_search_by_name(bees, tmp_path):
    from searchlm.search.searcher import Searcher, SearchOptions

    settings = bees
    query = "how do bees make honey from nectar"
    with Searcher(settings) as searcher:
        plain = [Path(h.path).name for h in searcher.search(query, SearchOptions(k=3))]
    site = install(tmp_path / "site")

    reranked = searchlm(site, "search", query, "--rerank", "shortest", "--home", str(settings.home), "--name", "bees",
                        "--json")
    assert reranked.returncode == 0, reranked.stderr
    order = [Path(h["path"]).name for h in json.loads(reranked.stdout)["hits"]]
    assert order == ["short.md", "middle.md", "long.md"] != plain  # the plugin's order, not retrieval's

    listed = searchlm(site, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"name": "searchlm-shortest", "version": "0.1", "builtin": False,
                                          "registers": {"rerankers": ["shortest"]}}]


def test_without_the_plugin_its_name_is_a_one_line_error(bees):
    settings = bees
    result = CliRunner().invoke(app, ["search", "honey", "--home", str(settings.home), "--name", "bees",
                                      "--rerank", "shortest"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: reranker 'shortest' is not one of cross-encoder, lm (use lm, lm:MODEL or cross-encoder:MODEL, or one "
        "an installed plugin adds: see `searchlm plugins`)"]


def test_a_plugin_that_fails_to_import_is_named_in_one_line(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pyproject.toml").write_text(
        '[project]\nname = "searchlm-broken"\nversion = "2.0"\n[project.entry-points.searchlm]\n'
        'broken = "searchlm_broken"\n[tool.setuptools]\npy-modules = ["searchlm_broken"]\n')
    (broken / "searchlm_broken.py").write_text("import no_such_library_here\n")
    result = searchlm(install(tmp_path / "site", broken), "plugins")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: plugin 'broken' (searchlm-broken 2.0) failed to load: ModuleNotFoundError: No module named "
        "'no_such_library_here' (fix or uninstall searchlm-broken)"]


@pytest.mark.slow
def test_the_plugin_package_installs_with_pip(tmp_path):
    """tests/plugin_pkg is a real package: pip installs it (no network: no deps, no build isolation) and a fresh
    searchlm finds it, as the hand-made .dist-info above stands in for."""
    src = shutil.copytree(PLUGIN, tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))  # builds write here
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    listed = searchlm(site, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"name": "searchlm-shortest", "version": "0.1", "builtin": False,
                                          "registers": {"rerankers": ["shortest"]}}]


# -- the registry, in-process: a plugin object registered and removed -----------------------------------------
def test_the_built_ins_register_through_the_same_hooks():
    assert rerankers.names() == ["cross-encoder", "lm"]
    assert stores.names() == ["faiss", "milvus"]
    assert keyword_indexes.names() == ["fts5", "milvus", "tantivy"]  # after a store's '+': faiss+tantivy
    assert embedders.names() == ["local", "ray", "sentence-transformers"]
    assert generators.names() == ["llm"]
    assert get_plugins() == []  # nothing installed in the test environment
    (builtin,) = get_plugins(all=True)
    assert builtin.builtin and builtin.registers["stores"] == ["faiss", "milvus"]
    assert builtin.registers["keyword_indexes"] == ["fts5", "tantivy", "milvus"]
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 0 and result.output.startswith("No plugins installed")


class Extras:
    """A plugin adding one name per seam, one taken name, and one whose library is missing."""

    @hookimpl
    def register_rerankers(self, register):
        register("Needs-Lib", "no_such_reranker_lib.models:Thing", extra="milvus")

    @hookimpl
    def register_stores(self, register):
        register("faiss", "no_such_module:Database")  # taken by the built-in: ignored

    @hookimpl
    def register_generators(self, register):
        register("echo-kind", lambda model, device: model)


def test_a_registered_plugin_adds_names_until_it_is_removed():
    with registered(Extras(), "extras"):
        assert rerankers.names() == ["cross-encoder", "lm", "needs-lib"]
        assert generators.names() == ["echo-kind", "llm"]
        assert stores.get("faiss").plugin == "searchlm.default_plugins"  # a plugin adds names, never replaces one
        with pytest.raises(ModelError) as caught:
            rerankers.get("needs-lib").load()
        assert str(caught.value) == ("reranker 'needs-lib' needs the no_such_reranker_lib package "
                                     "(pip install 'searchlm[milvus]')")
        assert [p.to_json() for p in get_plugins()] == [{
            "name": "extras", "version": None, "builtin": False,
            "registers": {"rerankers": ["needs-lib"], "generators": ["echo-kind"]}}]  # what it adds
        listed = CliRunner().invoke(app, ["plugins"])
        assert listed.exit_code == 0 and listed.output.splitlines() == [
            "extras", "  rerankers: needs-lib", "  generators: echo-kind"]
    assert rerankers.names() == ["cross-encoder", "lm"] and generators.find("echo-kind") is None
    with pytest.raises(InputError, match=r"^generator kind 'echo-kind' is not one of llm \("):
        generators.get("echo-kind")


def test_a_plugin_store_and_embedder_index_and_search(tmp_path, embedder):
    """A store and an embedder from a plugin, chosen by name in Settings: the manifest records the store, the
    index reopens through the registry, and without the plugin it says which store it needs."""
    from searchlm.indexing.indexer import index_folder
    from searchlm.search.searcher import Searcher, SearchOptions
    from searchlm.settings import Settings
    from searchlm.stores.faiss import FaissStore
    from conftest import write_files

    class PlainFaiss(FaissStore):
        name = "plain-faiss"
        opened = 0

        def __init__(self, *args, **kwargs):
            PlainFaiss.opened += 1
            super().__init__(*args, **kwargs)

    class Plugin:
        @hookimpl
        def register_stores(self, register):
            register("plain-faiss", PlainFaiss)

        @hookimpl
        def register_embedders(self, register):
            register("shared", lambda model, device="auto", **options: embedder)  # the session's MiniLM

    corpus = write_files(tmp_path / "corpus", FILES)
    settings = Settings(home=tmp_path / "indexes", name="p", store="plain-faiss", embedder="shared")
    with registered(Plugin(), "plain-faiss-plugin"):
        report = index_folder(corpus, settings)  # no embedder given: load_embedder finds "shared"
        assert sorted(report.added) == sorted(FILES) and report.chunks_embedded == 3
        manifest = json.loads((settings.home / "p" / "manifest.json").read_text())
        assert manifest["store"] == {"backend": "plain-faiss"}
        opened = PlainFaiss.opened
        with Searcher(Settings(home=settings.home, name="p")) as searcher:
            hits = searcher.search("bees make honey", SearchOptions(k=3, mode="dense"))
        assert {Path(h.path).name for h in hits} == set(FILES) and PlainFaiss.opened > opened
    with pytest.raises(InputError, match="index 'p' keeps its vectors in 'plain-faiss', which this searchlm does "
                                         r"not know \(install the plugin that provides it"):
        with Searcher(Settings(home=settings.home, name="p")) as searcher:
            searcher.search("bees", SearchOptions(k=3, mode="dense"))
