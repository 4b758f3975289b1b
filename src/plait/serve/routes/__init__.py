"""The server's routes, one module per API family; :func:`plait.serve.app.create_app` includes them."""
