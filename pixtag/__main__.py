from pixtag.cli.main import main

main()
