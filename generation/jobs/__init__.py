"""What happens to a job on the web side: the recipe it freezes (recipe), what designers submit
(submit), the fair-use limits (limits), its life on the queue (lifecycle) and the read queries
that pages and the API share (selectors). No torch here."""
