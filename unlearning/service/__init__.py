"""The service layer: everything the app (and only the app) needs from the engine.

Being written (issue 11); the modules are described here once they land.
"""
