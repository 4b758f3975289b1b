"""Compress: make models smaller and faster (export, quantization…), each result a catalog entry."""
