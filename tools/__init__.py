"""Maintainer commands: repository links in the notebooks (`tools.links`), the CUDA check (`tools.verify_cuda`)."""
