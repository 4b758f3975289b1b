from plait.cli.main import run

run()
