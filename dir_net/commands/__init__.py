"""`dirnet` subcommands: every module here defines `register(subparsers)`.

Modules must import heavy dependencies (torch, cv2, ...) inside their handlers so that
`dirnet --help` stays fast.
"""
