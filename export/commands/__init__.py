"""`holevision` subcommands provided by the export package (argparse registration only; heavy imports
happen inside each command's ``run``)."""
