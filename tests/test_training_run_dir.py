"""vgg_patch.training.run_dir: checkpoint discovery and temp-file clean-up."""
import os

from vgg_patch.training import run_dir


def test_checkpoint_candidates_skip_incomplete_ones(tmp_path, caplog):
    d = tmp_path
    for step in (3, 10):
        (d / ("model.ckpt-%d.index" % step)).write_bytes(b"i")
        (d / ("model.ckpt-%d.data-00000-of-00001" % step)).write_bytes(b"d")
    (d / "model.ckpt-12.index").write_bytes(b"i")                    # no data
    (d / "model.ckpt-12.data-00000-of-00001.tempstate123").write_bytes(b"d")
    (d / "model.ckpt-11.data-00000-of-00001").write_bytes(b"d")      # no index
    (d / "model.ckpt-20.index").write_bytes(b"i")                    # 1 of 2 shards
    (d / "model.ckpt-20.data-00000-of-00002").write_bytes(b"d")
    found = run_dir.checkpoint_candidates(str(d))
    assert found == [(10, os.path.join(str(d), "model.ckpt-10")),
                     (3, os.path.join(str(d), "model.ckpt-3"))]
    assert "ignoring incomplete checkpoint %s" % os.path.join(str(d), "model.ckpt-12") \
        in caplog.text
    assert run_dir.checkpoint_candidates(str(d / "none")) == []


def test_remove_temp_files_only_removes_the_trainers_temp_files(tmp_path):
    d = tmp_path / "run"
    (d / "best").mkdir(parents=True)
    (d / "export").mkdir()
    temp = [d / "model.ckpt-6.data-00000-of-00001.tempstate7526670355417306999",
            d / "model.ckpt-6.index.tempstate12",
            d / "checkpoint.tmp3f2a9c",
            d / "best" / "model.ckpt-5.data-00000-of-00001.tempstate99",
            d / "export" / ".vgg19-cbam.npy.k2j3_x.tmp",
            d / "run.json.tmp"]
    kept = [d / "model.ckpt-6.data-00000-of-00001", d / "model.ckpt-6.index",
            d / "notes.tmp", d / "my.tempstate1", d / "checkpoint",
            d / "data.tempstate12", d / "export" / "vgg19-cbam.npy"]
    for path in temp + kept:
        path.write_bytes(b"x")
    removed = run_dir.remove_temp_files(str(d))
    assert sorted(removed) == sorted(str(p) for p in temp)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in temp)
    assert run_dir.remove_temp_files(str(tmp_path / "nowhere")) == []


def test_remove_temp_files_knows_the_slim_exports_temp_files(tmp_path):
    # The names slim_export.save's Saver and atomic_write use before renaming
    # (seen with strace on TF 2.21: <prefix>.{data-*,index}.tempstate<uint64>).
    d = tmp_path / "run"
    (d / "export").mkdir(parents=True)
    export = d / run_dir.SLIM_EXPORT_CHECKPOINT
    temp = [export.with_name(export.name + ".data-00000-of-00001.tempstate16582485256988914559"),
            export.with_name(export.name + ".index.tempstate17561596535407516838"),
            d / (run_dir.SLIM_EXPORT_JSON + ".tmp")]
    kept = [export.with_name(export.name + ".data-00000-of-00001"),
            export.with_name(export.name + ".index"), d / run_dir.SLIM_EXPORT_JSON,
            d / "export" / "notes.tmp", d / "export" / "mine.ckpt.index.tempstate1",
            d / "export" / "slim-attention.ckpt.tempstate1"]
    for path in temp + kept:
        path.write_bytes(b"x")
    removed = run_dir.remove_temp_files(str(d))
    assert sorted(removed) == sorted(str(p) for p in temp)
    assert all(p.exists() for p in kept)
