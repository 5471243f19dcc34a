from searchlm.cli import run

run()
