"""Routing: which broker queue a job's task goes to, so that it lands on a worker that holds its model.

Each GPU worker takes from the shared `gpu` queue and from a queue of its own, which it reads first
(`cycle`), and advertises in the database the models it holds and the memory they leave free
(`workers`). The lifecycle asks `choice` where to send each job: to the own queue of a live worker
that holds the job's model, a spare worker when the model is in demand, the least busy worker when
none holds it, and `gpu` when none is live. Which jobs are sent, and when (users take turns,
jobs/lifecycle.dispatch), does not change.

No torch here: the web side, the workers and the reaper all route. The package imports nothing at
the top, so the broker transport can import `cycle` before Django is set up.
"""
