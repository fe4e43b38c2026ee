"""`ck doctor EXP`'s prompt-identity rule on token ids (the end-to-end runs are in test_trl_pipeline.py)."""
from cruijff_kit.doctor.prompt_identity import compare

# chatml-like: [im_start, user, \n] content [im_end, \n, im_start, assistant, \n]
PRE, POST = [151644, 872, 198], [151645, 198, 151644, 77091, 198]


def prompt(*content):
    return PRE + list(content) + POST


def test_same_frame_around_different_content_matches():
    trained = [prompt(10, 11), prompt(12), prompt(13, 14, 15)]
    evaluated = [prompt(20), prompt(21, 22)]
    assert compare(trained, evaluated) is None


def test_an_extra_bos_at_evaluation_is_found():
    trained = [prompt(10, 11), prompt(12)]
    evaluated = [[1] + prompt(20), [1] + prompt(21, 22)]
    assert "part at token 0" in compare(trained, evaluated)


def test_a_missing_think_block_at_evaluation_is_found():
    think = [151667, 198, 198, 151668, 198, 198]
    trained = [prompt(10) + think, prompt(12, 13) + think]
    evaluated = [prompt(20), prompt(21, 22)]
    assert "endings part" in compare(trained, evaluated)
