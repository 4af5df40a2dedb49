// The dashboard's entry point (written in web/assets/).
