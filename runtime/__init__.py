"""What runs after compilation: pytrees, signature keys, the module cache and buffer arenas."""
