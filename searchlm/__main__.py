from searchlm.cli import app

app(prog_name="searchlm")
