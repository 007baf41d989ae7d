from generation.models import GenerationJob, JobStatus


def job(**fields) -> GenerationJob:
    values = {"status": JobStatus.PROCESSING, "images_total": 4, "params": {"batch_size": 4}}
    return GenerationJob(**(values | fields))


def test_progress_counts_steps_of_the_running_batch() -> None:
    assert job(progress_step=7, progress_steps=28).progress_percent == 25


def test_progress_adds_finished_batches_to_the_running_one() -> None:
    running = job(params={"batch_size": 2}, images_done=2, progress_step=14, progress_steps=28)
    assert running.progress_percent == 75


def test_a_complete_job_is_at_100_percent() -> None:
    assert job(status=JobStatus.COMPLETE).progress == 1.0


def test_the_label_names_the_images_being_drawn() -> None:
    assert job().current_images == "images 1–4 of 4"
    assert job(params={"batch_size": 1}, images_done=2).current_images == "image 3 of 4"
    assert job(params={"batch_size": 3}, images_done=3).current_images == "image 4 of 4"
