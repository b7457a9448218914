"""The gateway's rules, whatever the front: the one submission path (service, jobs, the job writer and its
group commit), logins and credentials, phone numbers, carriers, prompts, idempotency keys, the login
throttle, the input checks, callback signing, the management operations (manage/, one module per resource)
and the API layer's errors and settings. Imports store, ivr, sms, tts, audio and coded; never a front, the
runtime or the CLI."""
