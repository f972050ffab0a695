"""Reading rendered PDFs back the way a person would: their text and their pages as images."""

import subprocess
from pathlib import Path


def pdf_text(pdf: bytes, tmp_path: Path, *, layout: bool = True) -> str:
    path = tmp_path / "document.pdf"
    path.write_bytes(pdf)
    args = ["pdftotext", *(["-layout"] if layout else []), str(path), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def pdf_pages(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "count.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return next(
        int(line.split()[1]) for line in info.stdout.splitlines() if line.startswith("Pages:")
    )


def pdf_to_pngs(pdf: bytes, out_dir: Path, *, resolution: int = 60) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "document.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(resolution), str(path), str(out_dir / "page")], check=True
    )
    return sorted(out_dir.glob("page*.png"))
