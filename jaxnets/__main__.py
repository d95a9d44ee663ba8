from jaxnets.cli import main

raise SystemExit(main())
