"""The web page: plait's face for a person, served by plait's own server at ``/``.

The page is plain ES modules and CSS installed with plait (``static/``; no build step, no CDN) that call the
same HTTP API as any other program. ``routes`` serves it and signs a browser in; ``sessions`` holds the
sign-in links and session cookies.
"""
