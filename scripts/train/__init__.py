"""Training of reel's default model (PyTorch, CPU). See README.md here."""
