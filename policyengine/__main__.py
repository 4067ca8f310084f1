from policyengine.cli import main

main(prog_name="policyengine")
