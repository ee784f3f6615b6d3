from cors_addon.cli import run

run()
