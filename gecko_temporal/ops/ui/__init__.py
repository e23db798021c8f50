"""``gecko-temporal ui``: a live page per run (its graph coloured by status, its steps, forms that
answer, jump, edit state, rewind and cancel) and a list of runs. :mod:`.view` holds the pure logic
(layout, statuses, redaction), :mod:`.server` the aiohttp server; ``static/`` the page itself."""
