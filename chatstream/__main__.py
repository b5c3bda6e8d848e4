from chatstream.cli import main

main()
