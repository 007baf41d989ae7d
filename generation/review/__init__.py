"""Review and approval, and the Brand Library: a designer submits images with a note and tags,
a reviewer (staff or the reviewers group) approves them or asks for changes, and the approved
ones form the library everyone searches. `services` writes, `selectors` reads, `colours` finds an
image's dominant colours at approval, `notify` tells the designer, `views` draws the pages."""
