from tweakops.cli import main

main()
