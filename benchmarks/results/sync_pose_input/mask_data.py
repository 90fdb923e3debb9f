"""Copy a prepared dataset with every frame masked as sync's `background: mask` does (person kept, rest grey 128).

Everything but frames.npy is symlinked. Diagnostic for issue 15: do the frozen stages fail because pose time reads
unmasked crops while pretraining read masked ones?
"""
import json, os, shutil, sys
from pathlib import Path
import numpy as np, torch
from selfpose.methods.sync import person_mask

src, dst, thr = Path(sys.argv[1]), Path(sys.argv[2]), 0.1
torch.set_num_threads(2)
for part in ("train", "test"):
    s, d = src / part, dst / part
    (d / "sequences").mkdir(parents=True, exist_ok=True)
    for f in s.iterdir():
        if f.is_file() and not (d / f.name).exists():
            os.symlink(f.resolve(), d / f.name)
    seqs = sorted((s / "sequences").iterdir())
    for i, q in enumerate(seqs):
        o = d / "sequences" / q.name
        if (o / "frames.npy").exists():
            continue
        o.mkdir(exist_ok=True)
        for f in q.iterdir():
            if f.name != "frames.npy" and not (o / f.name).exists():
                os.symlink(f.resolve(), o / f.name)
        fr = np.load(q / "frames.npy", mmap_mode="r")
        bg = torch.from_numpy(np.load(q / "background.npy")).permute(2, 0, 1)[None].float() / 255
        out = np.empty(fr.shape, np.uint8)
        for k in range(0, len(fr), 256):
            x = torch.from_numpy(np.ascontiguousarray(fr[k:k + 256])).permute(0, 3, 1, 2)
            m = person_mask(x.float() / 255, bg.expand(len(x), -1, -1, -1), thr).bool()
            y = torch.where(m, x, torch.full_like(x, 128))
            out[k:k + 256] = y.permute(0, 2, 3, 1).numpy()
        np.save(o / "frames.tmp.npy", out)
        os.replace(o / "frames.tmp.npy", o / "frames.npy")
        if i % 100 == 0:
            print(part, i, len(seqs), flush=True)
print("done", flush=True)
