"""Alert policies at work: events in, one alert and one "resolved" per episode out.

`rules` turns EventBus events (and the passing of time) into notices, purely;
`engine` feeds it from the bus and a timer thread and hands notices to one
`delivery.ChannelWorker` per channel (its own queue and thread: retries with
backoff, dedupe, a rate limit); `senders` speak Slack, signed webhooks and SMTP;
`report` is the status file the API, the CLI and the metrics read.
"""
