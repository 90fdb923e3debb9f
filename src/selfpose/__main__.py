from selfpose.cli import main

main()
