"""What runs in a process: the node (the one composition root of `ivrgate serve` and `ivrgate worker`,
starting HTTP, SMTP, the SMS node, the voice worker and the callback sender as peers), the voice worker,
the SMS node, the callback sender and the logging set-up. Imports the fronts and the core."""
