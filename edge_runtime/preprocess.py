"""Camera frame -> digit boxes -> a batch of MNIST-like 28x28 images.

Runs on the Jetson (Python 3.6, numpy 1.19, OpenCV 4.1) and on the workstation;
imports only numpy and cv2. Every size and scale comes from the manifest's
``preprocess`` dict (see ``edge_runtime.manifest.DEFAULT_PREPROCESS``).

Detection approach (``digits_from_frame``): vectorised OpenCV at a working size
(``work_scale``: the longer side at 320 px or the shorter at 240, whichever is bigger, never
enlarged: a 640x480 frame at half size, and a bigger frame at the same picture, so that every
rule sees the page at the detail it was tuned at; a ``roi`` gets more): 0.97 ms per 640x480
frame with 4.5 digits on average (300 synthetic:// frames in a loop, one OpenCV thread, 2-core x86
VM, night of 2026-11-24; 1.85 ms before the merge, ruled-line and crop changes of 2026-11-23); the
per-digit work is a few small crops.

1. Ink image: BGR/BGRA -> the minimum over B, G, R, so blue and red pens are as dark
   as black ones (gray frames are used as they are). On tinted paper that minimum is the
   channel where the paper is darkest (blue, on yellow paper), where faded grey ink or a
   pencil is nearly as bright as the paper: when the frame has no strong ink (step 3's
   strong-ink level under 35 %) and the paper's channels differ by 8 % or more, each channel
   is first scaled so that the paper is neutral (``paper_balance``: its 90th percentile per
   channel, gains up to 3x), and the ink is read from that (frames with strong ink, almost
   all of them, are read as they were: their rulings and grids stay as faint as before).
2. Polarity: dark ink on light paper unless thin light features (top-hat) clearly
   outweigh thin dark ones (black-hat): chalk on a board, white on black. Big dark
   areas (a shadow, the table) do not flip it because only thin features count; where
   the light ones win only narrowly (dense rulings under a shadow), the reading that
   leaves clearly less ink wins (4 of 3,000 synthetic camera frames were flipped), and
   failing that the features measured against a 7x7 median: on squared paper the cells
   between the grid lines are thin light features for the top-hat, but not against the median.
   All of this on a copy at most 160 px long, where strokes are thin at any frame size.
3. Paper: a closing (max then min filter) on a 1/4-size copy removes the strokes and
   keeps the edges of shadows (its kernel grows with a working size over 320 px: the wide
   strokes of big digits in a region of interest); where the same closing at the
   working size is more than 5 % darker, it is taken instead (the sharp edge of a page
   lying on a desk, which the 1/4-size copy blurred into a rim of "ink" beyond it).
   ``ink = 1 - gray / paper`` is then independent of uneven light, vignetting, exposure and
   soft shadows. It also divides the sensor noise by the paper's level: on a frame whose
   noise is at least 6 % of its paper's level (poor light, the camera's gain up) the working
   picture is smoothed with a 3x3 median first, and ink counts only where the paper is more
   than twice the sensor noise brighter (not the noise where a shadow or a corner darkens
   the paper to a few tens of gray levels). Crops cut from the full-resolution frame (step 9)
   get the same 3x3 median there.
4. Threshold: ``ink > max(16 %, 0.45 * the frame's strong-ink level)``. Frames where
   the "ink" covers too much, or is mostly isolated specks, are noise: no digits.
5. Ruled and margin lines: where a row/column projection shows a long line, runs
   longer than 30 % of the width (60 % of the height) are found at half size after
   smearing along the line (bridges breaks and a pixel of slant) and removed, except
   the pixels of pen strokes that cross them (long runs across the line). A line slanted
   more than that (a page photographed at an angle, seen at 1280x960 and up) stays, broken
   by the threshold into thin pieces; a thin piece whose ink runs on along its own axis
   beyond both its ends is dropped as a piece of a line in step 6 (``_piece_of_a_line``).
6. Pieces: the outer outlines of the mask's components, those inside another's hole included,
   less the enclosures (a circle or a box drawn around a digit: a component with one at least
   40 % of its hole's height inside a hole; only the outermost outlines hid the digit).
   A ring that touches its digit is one component with it: an outline that is nearly convex
   and mostly hole is peeled by 1-3 pixels, and where that leaves an empty moat inside the
   cut and a piece half to 0.85 of its height, the piece is the digit.
   Pieces of one digit (a stroke with a gap, a 5's detached bar, halves of a broken 3
   or 8) are merged by box rules: overlapping boxes, stacked pieces sharing their
   x-range and nearly touching, a small fragment close to a big piece, two thin
   pieces of one slanted stroke (a light 1 broken by the threshold, ends at most a
   pixel apart sideways), or a flat bar
   floating up to a third of the body's height above and right of it (a 5's top
   written apart: 3 more digits right on 300 synthetic camera frames); the merged box
   must stay digit-shaped, and a merged chain of several digit-sized pieces is
   split back into its pieces. A box wider than 1.15 x its height with an (almost)
   empty column is split there: digits of a number written close together. Digits that
   touch stay one box. After the model has read the boxes, one at least as wide as tall
   that it reads below 99.9 % is cut at up to 4 of its emptiest columns and its pieces are
   read in a second batch (``Numbers``, ``read_numbers``). Digits whose strokes are 1-3 px
   apart in the frame, which the working size joined (and which may share columns: a 1
   leaning into the next digit), are parted along their own strokes too: a box at least 0.6 x
   as wide as tall whose strong ink is in two tall pieces is looked at in the frame's pixels,
   and where its ink there is in two or more pieces 0.7 x its height tall, those are one more
   reading of it, each digit cropped from its own strokes. Frames without such a box pay 8 us
   per box 0.6-1 x as wide as tall for the look. Of a box's readings, the one whose pieces
   the model reads surest on average (mean log confidence; the pieces apart 0.02 ahead) is
   kept where it beats the whole box, its geometric mean confidence is at least 0.98 (0.99
   in a box under 1.3 x as wide as tall) and its pieces' feet are level (the model alone
   cannot tell a touching "41" from a 4; ``resolve_splits``).
7. Rejection: specks, stubs of rulings, anything touching the frame or ROI edge
   (paper edges, shadows, digits cut by the frame), too wide (w > 2.5 h) or too
   thin shapes (text-line fragments, line remnants: h > 12 w, unless the piece stands
   alone, up to 50 w: a 1 written upright with a fine pen, no other ink near its ends, not
   a box's side cut by the frame or a piece of a longer line), solid dark blobs (filled,
   convex and without a counter at full resolution: a small marker 8 fills its box
   at the working size too; only boxes wider than 0.55 x their height, as a narrower
   bar is a bold 1), the outline of dark objects (the paper under them
   is darker than around them) and the soft edges of big shadows (the paper under
   them steps by more than their darkest "ink": false boxes on empty pages). A digit
   is at least 3 % of the frame's shorter side tall (2.5 % if it re-traces as one, step 8).
8. Re-trace: around each candidate the ink is thresholded again at 30 % of the
   candidate's own darkest ink, recovering thin or light strokes the frame-wide
   threshold lost (a fineliner 4 seen as two 1s); kept only if still digit-shaped (up to
   1.4x as wide as tall if it found no other candidate and grew through strokes, not along
   thin rows). Strokes that leave the window are followed, window by window, up to 2 times the
   candidate's height (6 times for a faint fragment of a fine-pen digit beside bold ones).
   Candidates 2.5-3 % of the frame tall (a page of digits seen whole by a VGA camera) are
   kept only if they re-trace as a digit, not into the rulings that cut a big one's stroke;
   before such a piece is dropped, it is re-traced once more without the rows a ruling inks
   across the window (a faint digit on a notebook's line, whose re-trace ran along it).
   Faint digits: the frame-wide threshold is 45 % of the strong ink, so a pencil digit beside
   marker ones, a fine pen beside bold ones or a digit in a shadow may leave no piece above it.
   Away from the candidates, the ink is thresholded again at the frame's floor (rulings
   removed); such a candidate must re-trace as a digit, keep apart from the others and stand
   out from the ink around its strokes (not a shadow, grid lines or a patch).
   A 4 written in two strokes whose bar stops short of its stem (an "L" with an open top
   right beside a taller thin stem starting about as high) is joined into one digit.
   A candidate beside the page, on a patterned desk (wood grain), is dropped: the "paper"
   under it is much darker than the page's, of another colour, and inked all around it. Paper
   in a shadow keeps the page's colour; a plain coloured note is not inked around its digits.
   Digits written on neighbouring ruled lines, one right above the other, merge into one
   tall candidate: one at least 1.6x the frame's median candidate height is cut at an empty
   middle row (and each row into its digits) when every part is a whole digit.
   A picture under 128 px (an MNIST image, a crop), and a frame holding a piece of ink or of
   dark paper at least 30 % of its height tall, is looked at as a close-up (``_close_up``):
   padded with its edges' colour, at 128 px, polarity from its edges (a close-up's wide strokes
   are no thin features for the hats, and the paper estimate takes them for a dark object). In
   a frame its digits count where their strokes are bold (``_with_close_up``): they are the
   result where nothing was found, and replace the pieces the normal look found of them.
9. Crop: each digit's ink, contrast-stretched so its stroke core is white and faint
   marks (rulings, paper texture) black, cut to its own strokes (so a neighbour or a
   ruling inside the box is dropped), from the working ink map when the digit is at
   least 1.5 model boxes (30 px) tall there, which is detail enough for a 20 px box and
   skips a full-resolution ink map per digit; smaller digits from the full-resolution
   frame. Then ``normalize_digit``: LeCun's MNIST
   normalisation (fit into box x box keeping the aspect ratio with INTER_AREA, place
   in size x size with the centre of mass at the centre). A digit whose strokes would be
   thinner than MNIST's (a fine pen on a big digit: a hairline in the 20 px box) has its
   strokes grown first, to MNIST's median width there; much thicker ones (a marker on a
   small digit) are thinned to 3 px. On MNIST digits themselves
   ``normalize_digit`` is the identity.
"""

import heapq
from typing import List, NamedTuple, Optional, Tuple

import cv2
import numpy as np

from edge_runtime.manifest import DEFAULT_PREPROCESS

WORK_SIDE = 320  # detection runs with the frame's longer side at about this many pixels,
WORK_SHORT_SIDE = 240  # or its shorter side at this many where that is more (a 640x480 frame at half size)
PAPER_SHRINK = 4  # the paper estimate is made at 1/PAPER_SHRINK of the working size
PAPER_KERNEL = 7  # with a closing this wide there (strokes up to 28 px wide at a working size of WORK_SIDE,
# and as wide relative to a bigger working size: a region of interest close to the page);
EDGE_MARGIN = 1.05  # where the same closing at the working size x this is darker, it is taken (sharp edges)
INK_FLOOR = 0.16  # never threshold ink below this (fraction darker than the paper)
INK_RELATIVE = 0.45  # a digit's darkest ink reaches at least this fraction of the frame's strong-ink level
SPLIT_WIDTH = 1.15  # boxes wider than this x their height may be digits written close together,
SPLIT_SIDE = 0.25  # split at a column at least this x the height from either side
SPLIT_MIN_HEIGHT = 0.6  # and only into parts at least this x its height tall
SPLIT_INK = 0.06  # holding at most this x the height in ink pixels
# Digits of a number written closer than that (touching, or a pixel apart at the working size) stay
# one box. A box at least NUMBER_WIDTH x as wide as tall that the model reads below NUMBER_DOUBT is
# cut at up to NUMBER_CUTS of its emptiest columns (NUMBER_CUT_APART x its height apart and from its
# sides) into pieces at least NUMBER_PIECE x its height tall, read in a second batch, and
# ``resolve_splits`` keeps the pieces of the reading whose mean log confidence is highest when that
# beats the whole's, their geometric mean confidence is at least NUMBER_SURE (NUMBER_SURE_NARROW for
# a box less than NUMBER_WIDE x as wide as tall: more often one wide digit, a 7's tail read as a 1,
# than two) and their feet are level, within NUMBER_LEVEL x the box's height (the pieces of one wide
# digit rarely are).
NUMBER_WIDTH = 1.0
NUMBER_DOUBT = 0.999
NUMBER_CUTS = 4
NUMBER_DIGIT_WIDTH = 0.4  # and at most one cut per this x its height of width (a narrow box, 1-2 cuts)
NUMBER_CUT_APART = (0.2, 0.15)  # (from each other, from the sides)
NUMBER_PIECE = 0.7
NUMBER_SURE = 0.98  # (0.97 cut single wide digits of synthetic:// seeds 10-12 in two)
NUMBER_WIDE = 1.3
NUMBER_SURE_NARROW = 0.99
NUMBER_LEVEL = 0.15
NUMBER_PIECES = 32  # a frame's second batch holds at most this many pieces (an engine's batch size)
# Digits of a number whose strokes lie apart in the frame, but which the working size joined (2-3 px
# apart at 640x480, the downscale and closing bridge the gap), and which may overlap in columns. A box
# at least APART_WIDTH x as wide as tall where the working ink map, at APART_LEVEL x the frame's
# strong-ink level, holds at least two pieces APART_TALL x its height tall (boxes NUMBER_WIDTH x as
# wide are not pre-checked) is looked at in the frame: where its ink at that level falls into at
# least two pieces NUMBER_PIECE x its height tall, each with the smaller pieces nearest it, those are
# digits to read when the model doubts the box (``_apart_pieces``): one more reading for
# ``resolve_splits``, scored APART_PREFERENCE above its mean log confidence (its pieces follow the
# strokes, where a cut at a column may take a neighbour's).
APART_WIDTH = 0.6
APART_LEVEL = 0.6
APART_TALL = 0.5
APART_PREFERENCE = 0.02
NOISY_CROP_MEDIAN = 3  # on a noisy frame, full-resolution crops get a median this wide (the working picture's)
# Tinted paper: on a frame whose strong ink is under BALANCE_FAINT (faded ink, a pencil), paper whose
# channels' BALANCE_QUANTILE levels differ by BALANCE_NEUTRAL x or more is made neutral first, each
# channel's gain at most BALANCE_MAX_GAIN (``paper_balance``).
BALANCE_FAINT = 0.35
BALANCE_QUANTILE = 0.9
BALANCE_NEUTRAL = 1.08
BALANCE_MAX_GAIN = 3.0
RETRACE_LEVEL = 0.3  # each candidate is re-traced at this fraction of its darkest ink
RETRACE_GROWTH = 2.0  # and may grow to at most this many times their height,
FAINT_PIECE = 0.7  # or, pieces whose darkest ink is under this x the frame's strong ink (a faint digit's
RETRACE_FAINT_GROWTH = 6.0  # fragments), to this many times,
RETRACE_STEPS = 3  # following strokes that leave the window through at most this many more windows
INK_LOW = 0.45  # and its strokes are traced down to this fraction
NESTED_SHARE = 0.4  # a component with another at least this x as tall as the hole it lies in encloses it
ENCLOSED = 0.5  # (in a re-trace, the one inside is also at least this x the candidate's height)
RING_HOLES = 0.5  # a component whose holes take this x its outline's area may be a ring touching its digit:
RING_CONVEX = 0.9  # (an outline filling at least this x its convex hull: an ellipse or a box, not an 8)
RING_PEEL = 3  # its outer 1..this many pixels are cut away, where that leaves an empty moat inside the cut
RING_MOAT = 0.25  # (ink on at most this x the pixels along the cut's inside), and a piece left inside
RING_INNER_MIN, RING_INNER_MAX = 0.5, 0.85  # this x the ring's height (and at most the upper x its width) is the digit
RULING_REACH = 2  # or that grows to both sides, this far beyond its box, only through thin rows (a ruling)
WIDE_DIGIT_GROWTH = 1.3  # a re-trace up to MERGED_MAX_WIDTH_OVER_HEIGHT wide may grow at most this x taller
NEIGHBOUR_SHARE = 0.2  # a re-trace taking in this much of another candidate's box (not most of it) is not kept
RETRACE_LINE = 0.8  # a piece whose re-trace is no digit tries again without rows inked across this x its window
STRONG_INK_QUANTILE = 0.997
MIN_DIGIT_FRACTION = 0.03  # min digit height as a fraction of the shorter frame side
MIN_DIGIT_PX = 10  # and never below this many full-resolution pixels
SMALL_DIGIT = 0.83  # down to this x that height (2.5 % of the side), a candidate must re-trace as one digit
MAX_DIGIT_FRACTION = 0.9  # max digit height as a fraction of the frame/ROI height
CLOSE_UP_SIDE = 128  # a picture smaller than this, or one holding a piece of ink or of dark paper at least
CLOSE_UP_MIN = 0.3  # this x its shorter side tall, is looked at as a close-up: for digits this tall, at this size
CLOSE_UP_PAD = 0.1  # padded by this x its longer side with its border's colour (a tight crop touches the edge);
WIDE_STROKE = 0.5  # its digits are kept where their strokes are bold: at least this x the paper estimate's reach
BOLD_MAX = 0.3  # (PAPER_SHRINK x its kernel) wide and at most this x their height (a marker digit's: 0.06-0.26)
MAX_WIDTH_OVER_HEIGHT = 2.5
MAX_HEIGHT_OVER_WIDTH = 12.0
LONE_STROKE = 50.0  # a thinner piece, up to this x as tall as wide, is a 1 written upright in a fine pen
LONE_ENDS = 0.2  # when no other ink lies within this x its height of its two ends (not a box's side or a
LONE_INK = 0.5  # piece of a longer line; other ink: at least this x the piece's darkest)
MIN_WIDTH_PX = 2  # at the working size: one-pixel-wide runs are line remnants, not pen strokes
LINE_PIECE_WIDTH = 0.35  # a piece at most this x as wide as tall (a 1, or a piece of a slanted ruling)
LINE_REACH = 1.0  # is a piece of a line when, along its own axis, for this x its height beyond each end
LINE_REACH_FRAME = 0.1  # and at least this x the frame's height (a line is long; a digit's side curves away),
LINE_INK = 0.4  # ink of at least this x its darkest covers LINE_COVER of the way on both sides (on one where
LINE_COVER = 0.8  # the other leaves the frame within LINE_REACH_MIN px)
LINE_REACH_MIN = 8
MAX_FILL = 0.72  # a box filled more than this at the frame-wide threshold may be a solid shape:
SOLID_LEVEL = 0.5  # it is when its core (ink at this fraction of its darkest, at full resolution)
MIN_COUNTER_AREA = 2.0  # has no hole of this many pixels (a bold 8's counter)
SOLID_CONVEXITY = 0.9  # and fills at least this fraction of its convex hull (a bold 3 or 5 does not)
SOLID_WIDTH = 0.55  # (only boxes wider than this x their height: a bar is a 1)
LINE_FRACTION = 0.3  # horizontal runs longer than this fraction of the width are ruled lines
DASH_LENGTH = 6  # a piece at most 2 px tall and this many times as wide is a ruling's stub
CROSSING_RUN = 6  # a pen stroke crosses a ruled line with a run at least this long
LINE_GAP = 7  # gaps up to this many pixels in a ruled line's mask are bridged
VERTICAL_LINE_FRACTION = 0.6  # vertical runs longer than this fraction of the height are margin lines
LIGHT_INK_MARGIN = 1.5  # light-ink features must beat dark ones by this factor to flip polarity,
LIGHT_INK_CLEAR = 3.0  # and below this factor the light reading must also leave more ink than
SPARSER_INK = 0.6  # 1 / this x the dark one's (measured on 3,000 synthetic frames and their negatives)
MEDIAN_WINDOW = 7  # failing that, features against this median (half size) break the tie (squared paper);
MEDIAN_CLEAR = 0.2  # and where the top-hat says light, light features under this x the dark ones against
MEDIAN_EVIDENCE = 2550.0  # the median, summing to at least this (10 full-strength pixels), still say dark
COARSE_SIDE = 40  # and on a copy this big, where a big digit's wide strokes are thin features, light features
COARSE_DARK = 0.6  # at most this x the dark ones overrule a light reading (a marker digit filling much of the
COARSE_EVIDENCE = 0.5  # frame) where those dark ones are at least this x the half-size copy's light features
POLARITY_SIDE = WORK_SIDE // 2  # polarity is judged on a copy at most this big (strokes stay thin features)
FEATURE_LEVEL = 12  # polarity features fainter than this (of 255) are sensor noise
MIN_PAPER_LEVEL = 16  # paper darker than this is not paper
CROP_FLOOR = 0.3  # in a crop, ink below this fraction of the stroke level is background
DETAIL_FACTOR = 1.5  # digits this many model boxes tall at the working size are cut from it, not full res
# (measured on 1,200 synthetic:// frames and the recorded scenes: the same accuracy as 3, +1 digit right on camera)
CROP_TOP = 0.85  # and ink above this fraction is full white
MERGE_GAP = 0.08  # pieces closer than this fraction of the bigger piece's height may be one digit
MERGED_MAX_WIDTH_OVER_HEIGHT = 1.4
STACKED_OVERLAP = 0.3  # stacked pieces share at least this fraction of the narrower one's width
MERGED_MAX_GROWTH = 1.5  # and together are at most this much taller than the bigger piece
MERGED_MAX_SPAN = 2.6  # merged pieces taller than this many times their tallest piece are several digits
FRAGMENT_GAP = 0.15  # and may be this far (fraction of the big piece's height) from it
FRAGMENT_HEIGHT = 0.35  # a piece this much shorter than its neighbour may be a broken-off fragment
THIN_STROKE = 0.4  # pieces at most this wide for their height are strokes (a broken 1)
BAR_ASPECT = 2.0  # a piece at least this many times as wide as tall, above a taller one, may be a 5's bar
BAR_GAP = 0.35  # written apart from its body by at most this fraction of the body's height
BAR_MIN_WIDTH = 0.3  # and at least this wide for the body's height
FEW_PIECES = 12  # merge_fragments checks every pair of fewer pieces, and prefilters more with numpy
FOUR_STEM = 1.2  # a 4's stem, written apart from its "L", is at least this x the L's height,
FOUR_GAP = 0.25  # at most this x its own height to the L's right,
FOUR_TOPS = 0.3  # and starts within this x its height of the L's top; the L's top-right quarter
FOUR_OPEN = 0.35  # holds at most this fraction of ink (a 9's loop fills 70 %)
NOISE_CHECK_COVERAGE = 0.01  # above this much ink, check that it is strokes, not specks
NOISE_SOLID = 0.25  # ...and noise if less than this fraction of it survives a 2x2 opening
MAX_INK_COVERAGE = 0.25  # more of the frame than this looks like ink: noise or texture, not paper
DARK_REGION = 0.5  # paper under a digit darker than this fraction of the paper around it: a dark object
SHADOW_EDGE = 1.0  # a candidate whose darkest ink is below this x the paper's step under it
SHADOW_SOFTNESS = 2.0  # and whose ink edges are this soft (Sobel, over its peak) is a shadow's edge
NOISE_FLOOR_K = 12.0  # on a frame without strong ink, the ink floor rises to this x the ink map's median
NOISE_FLOOR_MAX = 64.0  # pixel-to-neighbourhood difference (sensor noise), up to this (25 % ink);
QUIET_NOISE = 12.0  # at most this (a median difference of 1) is a quiet frame, where the floor
QUIET_FLOOR = 0.10  # drops to this instead (faded ink, a light pencil), unless that makes specks
NOISY_FRAME = 0.06  # a frame whose sensor noise is this x its paper's level (poor light, the gain up) is
NOISE_SIGMAS = 2.0  # smoothed, and its ink counts only where the paper is this x that noise brighter
SECOND_PER_SIGMA = 1.652  # the median of |2 g - left - right| over Gaussian noise's sigma
PEAK_OVER_NOISE = 1.75  # on a frame that measures the noise, a digit's darkest ink reaches this x that measure
OTHER_SURFACE = 0.6  # a candidate on "paper" darker than this x the page's (the paper's 90th percentile),
SURFACE_CHROMA = 0.08  # of another colour (its normalised B, G, R differ from the page's by this much in all)
SURFACE_TEXTURE = 0.2  # and with ink over this fraction of the band around it lies on a desk's pattern
SURFACE_AROUND = 0.3  # (its colour: the brighter half of its box grown by this x its size on each side)
BORDER_PX = 3  # at the working size: components this close to the edge are cut by it
BORDER_FULL_PX = 6  # (or this many frame pixels where that is less: a big frame's small working size)
THIN_ROWS = 3  # ...unless cutting their horizontal runs under this many rows tall (a ruling's stub) frees them
MIN_STROKE = 1.4  # strokes thinner than this in the model's box (a fine pen on a big digit) are grown
STROKE_TARGET = 2.0  # to about this width there (MNIST's median ``stroke_width``; 1.4 is its 5th percentile)
STROKE_CORE = 0.5  # (only ink at least this fraction of the crop's peak grows)
# Faint digits (``_faint_candidates``: a pencil digit beside marker ones leaves no piece above the
# threshold) are looked for at the frame's ink floor, with their darkest ink
FAINT_PEAK = 1.2  # at least this x the floor (only where the threshold is higher than that),
FAINT_PAD = 0.25  # away from the other candidates (their boxes grown by this x their height),
FAINT_APART = 0.15  # and at least this x its own height from them;
FAINT_CONTRAST = 2.0  # the darkest ink is this x the ink around its strokes (90th pct.: not a shadow, grid lines);
FAINT_FILL = 0.8  # its strokes fill at most this fraction of its box (not a patch);
FAINT_GATE = 3  # faint ink with no vertical run this long at the working size holds no digit: ruling remnants
FAINT_PIECES = 24  # only this many of the biggest pieces of faint ink are looked at
STACKED_HEIGHT = 1.6  # a candidate this many times the frame's median height may be digits written on two
STACKED_TOUCH = 1  # ruled lines, one above the other: split at a middle row holding at most this many ink
STACKED_PART = 0.6  # pixels (working size), into parts at least this x that median tall,
STACKED_SHAPE = 0.8  # and at least this x as tall as wide (the halves of a broken 8 or 3 are wider)
STACKED_ONE_SPAN = 1.9  # a part may be a 1 (a thin stroke) when the candidate spans this x the median
MAX_STROKE = 3.6  # strokes thicker than this there (a marker on a small digit; MNIST's 98th-99th percentile)
THICK_TARGET = 3.0  # are thinned to about this (its 94th percentile)

_ROW_SECOND_DIFFERENCE = np.array([[-1, 2, -1]], np.float32)
_KERNELS = {}  # (rows, cols) -> np.ones kernel, made once (OpenCV only reads them)


def _kernel(shape):
    """A cached ``np.ones(shape, np.uint8)`` structuring element."""
    kernel = _KERNELS.get(shape)
    if kernel is None:
        kernel = np.ones(shape, np.uint8)
        if len(_KERNELS) < 64:  # (line kernels depend on the frame size: keep the cache small)
            _KERNELS[shape] = kernel
    return kernel


def _second_anchor(shape):
    """The anchor for the second half of an opening or closing with an ``np.ones(shape)`` kernel.

    ``cv2.morphologyEx`` uses one anchor, the kernel's centre ``(cols // 2, rows // 2)``, for both
    halves; with an even side the two halves then shift the same way instead of cancelling, and
    a 2x2 closing moves everything one pixel down and right. The reflected anchor undoes that."""
    rows, cols = shape
    return (cols - 1 - cols // 2, rows - 1 - rows // 2)


def _closed(mask, shape):
    """Morphological closing that leaves strokes where they are (see ``_second_anchor``)."""
    return cv2.erode(cv2.dilate(mask, _kernel(shape)), _kernel(shape), anchor=_second_anchor(shape))


def _opened(mask, shape):
    """Morphological opening that leaves strokes where they are (see ``_second_anchor``)."""
    return cv2.dilate(cv2.erode(mask, _kernel(shape)), _kernel(shape), anchor=_second_anchor(shape))


class DigitBatch(NamedTuple):
    """Digits found in one frame.

    boxes: list of (x, y, w, h) ints in the input frame's pixel coordinates.
    batch: float32 [N, size, size, 1] (NHWC, default) or [N, 1, size, size] (NCHW): one image
        per box.
    crops: the normalised uint8 [size, size] images (white ink on black) of ``batch``, for overlays.
    debug: optional dict of intermediate images (only with ``debug=True``).
    numbers: the boxes that may be several digits written close together (a ``Numbers``, or None):
        ``read_numbers`` cuts those the model doubts and reads their pieces.
    """

    boxes: List[Tuple[int, int, int, int]]
    batch: np.ndarray
    crops: Optional[List[np.ndarray]] = None
    debug: Optional[dict] = None
    numbers: Optional["Numbers"] = None


class Split(NamedTuple):
    """A box that may be a number written close together (digits touching or nearly so).

    whole: its index in ``DigitBatch.boxes``; cuts: how many pieces its cut points make (the
    pieces between cut points i < j are the candidate digits); pieces: {(i, j): (box in frame
    coordinates, row of its probabilities: the boxes' rows come first, then the pieces')};
    apart: [(box, row)] left to right, its digits whose strokes lie apart in the frame
    (``_apart_pieces``), or [].
    """

    whole: int
    cuts: int
    pieces: dict
    apart: list


def _pre_value(pre, key):
    if pre and key in pre and pre[key] is not None:
        return pre[key]
    return DEFAULT_PREPROCESS[key]


# --------------------------------------------------------------------------
# LeCun's normalisation of one crop
# --------------------------------------------------------------------------


def _centre_by_mass(image, size):
    """Place ``image`` (uint8, fits in size x size) in a size x size canvas with its centre of mass at the middle."""
    h, w = image.shape
    canvas = np.zeros((size, size), np.uint8)
    m = cv2.moments(image, False)
    if m["m00"] <= 0:
        return canvas
    # MNIST puts the centre of mass at pixel index size/2 (14 for 28); keep the whole digit inside.
    left = int(round(size / 2.0 - m["m10"] / m["m00"]))
    top = int(round(size / 2.0 - m["m01"] / m["m00"]))
    left = max(0, min(left, size - w))
    top = max(0, min(top, size - h))
    canvas[top : top + h, left : left + w] = image
    return canvas


def stroke_width(ink):
    """Mean stroke width in pixels of a white-on-black uint8 image: 2 x its ink over its edges (the sum of
    the image over the sum of absolute differences between neighbours; a stroke of length L and width
    w holds L w of ink and has 2 L of edge). Soft edges count as they are; no threshold."""
    edges = cv2.sumElems(cv2.absdiff(ink[:, 1:], ink[:, :-1]))[0] + cv2.sumElems(cv2.absdiff(ink[1:], ink[:-1]))[0]
    return 2.0 * cv2.sumElems(ink)[0] / edges if edges > 0 else 0.0


def _disc(diameter):
    """A cached elliptical structuring element ``diameter`` px across."""
    key = ("disc", diameter)
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
        if len(_KERNELS) < 64:
            _KERNELS[key] = kernel
    return kernel


def _mnist_strokes(ink, factor):
    """``ink`` (to be scaled by ``factor`` < 1) with its strokes brought into MNIST's range of widths
    after scaling (``stroke_width`` of the 10k 28x28 test digits: 1.4-3.1 px from the 5th to the 95th
    percentile, median 2.0). A fine pen on a big digit is a hairline in the model's box: its strokes
    grow to MNIST's median. A marker on a small digit is a blob: its strokes are thinned to 3.0 px."""
    scaled = stroke_width(ink) * factor
    if scaled <= 0 or MIN_STROKE <= scaled <= MAX_STROKE:
        return ink
    if scaled > MAX_STROKE:
        shrink = int(round((scaled - THICK_TARGET) / factor))
        return cv2.erode(ink, _disc(shrink + 1)) if shrink >= 1 else ink
    grow = int(round((STROKE_TARGET - scaled) / factor))
    if grow < 1:
        return ink
    # Only the strokes grow (ink at half the peak or more): faint marks left in the crop (where grid
    # lines cross, a ruling's edge) would grow into dots the model reads as strokes.
    _, strokes = cv2.threshold(ink, STROKE_CORE * cv2.minMaxLoc(ink)[1], 255, cv2.THRESH_TOZERO)
    return cv2.max(ink, cv2.dilate(strokes, _disc(grow + 1)))


def normalized_uint8(gray, pre=None):
    """Like ``normalize_digit`` but returns the uint8 image (white ink on black, before scaling)."""
    size = int(_pre_value(pre, "size"))
    box = int(_pre_value(pre, "box"))
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        return np.zeros((size, size), np.uint8)
    if gray.dtype != np.uint8:
        gray = np.clip(np.nan_to_num(gray), 0, 255).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(gray))  # of the non-zero (ink) pixels
    if w == 0 or h == 0:
        return np.zeros((size, size), np.uint8)
    ink = gray[y : y + h, x : x + w]
    factor = float(box) / max(h, w)
    if factor < 1.0:
        ink = _mnist_strokes(ink, factor)
    new_w = max(1, min(box, int(round(w * factor))))
    new_h = max(1, min(box, int(round(h * factor))))
    if (new_w, new_h) != (w, h):
        interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
        ink = cv2.resize(ink, (new_w, new_h), interpolation=interpolation)
    return _centre_by_mass(np.ascontiguousarray(ink), size)


def normalize_digit(gray, pre=None):
    """One white-on-black uint8 crop (any size) -> float32 [size, size] in [0, 1], MNIST style.

    The ink's bounding box is fitted into ``box x box`` keeping the aspect ratio
    (anti-aliased with INTER_AREA) and placed in ``size x size`` with its centre
    of mass at the centre. A 28x28 MNIST digit comes back (almost) unchanged.
    If ``pre["foreground"]`` is "black-on-white" the result is inverted.
    """
    image = normalized_uint8(gray, pre)
    out = image.astype(np.float32) * np.float32(_pre_value(pre, "scale"))
    if _pre_value(pre, "foreground") == "black-on-white":
        out = np.float32(255.0 * float(_pre_value(pre, "scale"))) - out
    return out


# --------------------------------------------------------------------------
# Frame -> ink map
# --------------------------------------------------------------------------


def _as_uint8_image(frame):
    """Any frame -> uint8 [H,W] or [H,W,3|4] (contiguous), or None if it is not an image."""
    if frame is None:
        return None
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] not in (3, 4):
        return None
    if frame.ndim not in (2, 3) or frame.shape[0] < 8 or frame.shape[1] < 8:
        return None
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        elif frame.dtype.kind == "f":
            frame = np.nan_to_num(frame.astype(np.float32))
            if frame.size and float(frame.max()) <= 1.0:
                frame = frame * 255.0
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        elif frame.dtype.kind in "ui":
            frame = np.clip(np.nan_to_num(frame.astype(np.float32)), 0, 255).astype(np.uint8)
        else:
            return None
    return np.ascontiguousarray(frame)


def darkness_source(image):
    """uint8 [H,W] where ink is dark: the minimum over B, G, R (coloured pens become dark), or gray as is."""
    if image.ndim == 2:
        return image
    h, w, channels = image.shape
    # Each row's B, G, R, (A,) B, G, R, ... as one row: a 3-wide erosion's value at a pixel's G is the
    # minimum of its B, G and R. 35 vs 83 us (cv2.split and two cv2.min) at 320x240.
    rows = np.ascontiguousarray(image).reshape(h, w * channels)
    return np.ascontiguousarray(cv2.erode(rows, _kernel((1, 3)))[:, 1::channels])


def paper_balance(image):
    """A per-channel LUT (1x256xC uint8) that makes the paper of a BGR(A) ``image`` neutral (its
    BALANCE_QUANTILE level in each channel brought up to the brightest channel's, gains at most
    BALANCE_MAX_GAIN), or None for gray frames and paper that is neutral already (channels within
    BALANCE_NEUTRAL of each other)."""
    if image.ndim != 3:
        return None
    sample = image[::4, ::4]
    levels = [max(1.0, _quantile(np.ascontiguousarray(sample[:, :, c]), BALANCE_QUANTILE)) for c in range(3)]
    top = max(levels)
    if top < BALANCE_NEUTRAL * min(levels):
        return None
    ramp = np.arange(256, dtype=np.float32)
    tables = [np.clip(ramp * min(BALANCE_MAX_GAIN, top / level), 0, 255) for level in levels]
    tables += [ramp] * (image.shape[2] - 3)
    return np.ascontiguousarray(np.stack(tables, axis=1)[None].astype(np.uint8))


def balanced(image, balance):
    """``image`` with ``paper_balance``'s LUT applied (as it is when that is None)."""
    return image if balance is None else cv2.LUT(image, balance)


def gray_from_frame(frame):
    """BGR [H,W,3], BGRA [H,W,4] or gray [H,W] (any numeric dtype) -> uint8 [H,W] ink image, or None."""
    image = _as_uint8_image(frame)
    return None if image is None else darkness_source(image)


def _quantile(image, q, mask=None):
    """The ``q`` quantile of a uint8 image's values (under ``mask``), from its 256-bin histogram."""
    cumulative = cv2.calcHist([image], [0], mask, [256], [0, 256]).ravel().cumsum()
    total = float(cumulative[-1])
    if total <= 0:
        return 0
    return int(cumulative.searchsorted(q * total))


def ink_is_dark(gray_work):
    """True when the picture is dark ink on light paper (the usual case), False for light ink on dark.

    Compares thin dark features (black-hat) with thin light features (top-hat) on a half-size copy:
    handwriting is thin, so its polarity wins even when a big shadow or a dark table fills the frame.
    Where light features win but not clearly (dense rulings under a shadow, whose light gaps count
    as thin light features, or a marker digit whose strokes are too thick to count as thin dark
    ones), the polarity whose reading leaves clearly less ink wins: handwriting is sparse. Failing
    that, dark wins if, measured against the local median instead, dark features are at least as
    strong: on squared paper every cell between the grid lines is a thin light feature for the
    top-hat, but the cells are the median there, so only the grid lines and the ink stand out.
    Against the median, clearly dark features (MEDIAN_CLEAR, MEDIAN_EVIDENCE) also overrule a
    clear light reading of the top-hat (a grid whose cells outweigh the ink 3.3-3.7x).
    """
    small = _half_size(gray_work)
    dark, light = _hat_sums(small)
    ratio = light / max(1.0, dark)
    if ratio <= LIGHT_INK_MARGIN:
        return True
    if _wide_dark_strokes(_coarse_copy(gray_work), light):
        return True
    if ratio >= LIGHT_INK_CLEAR:
        # Clearly light by the top-hat, unless the median says clearly dark (squared paper whose
        # grid cells all count as light features, on some pages 3.3-3.7x the dark ones).
        dark, light = _features_around_median(small)
        return dark >= MEDIAN_EVIDENCE and light <= MEDIAN_CLEAR * dark
    if _ink_coverage(gray_work) <= SPARSER_INK * _ink_coverage(cv2.bitwise_not(gray_work)):
        return True
    dark, light = _features_around_median(small)
    return light <= max(1.0, dark)


def _coarse_copy(gray_work):
    """The working picture with its longer side at COARSE_SIDE: where the strokes of a digit filling
    much of the frame (a marker's, 10-20 % of its height wide) are thin features for the 5x5 hats."""
    return _with_longer_side(gray_work, COARSE_SIDE)


def _with_longer_side(gray, side):
    """``gray`` shrunk (INTER_AREA) so that its longer side is ``side`` pixels (each side at least 8)."""
    h, w = gray.shape
    scale = side / float(max(h, w))
    return cv2.resize(gray, (max(8, int(round(w * scale))), max(8, int(round(h * scale)))),
                      interpolation=cv2.INTER_AREA)


def _half_size(gray_work):
    """The working picture at half size, or with its longer side at POLARITY_SIDE if that is smaller:
    the 5x5 hats and the 7x7 median see strokes as thin features at the size they were tuned at (a
    bigger working size made a marker's strokes too wide for them, and frames read inverted)."""
    h, w = gray_work.shape
    longer = max(h, w)
    if longer <= 2 * POLARITY_SIDE:
        return cv2.resize(gray_work, (max(8, w // 2), max(8, h // 2)), interpolation=cv2.INTER_AREA)
    return _with_longer_side(gray_work, POLARITY_SIDE)


def _feature_sums(dark, light):
    """(sum of dark features, sum of light ones), counting only clear features (not sensor noise)."""
    _, dark = cv2.threshold(dark, FEATURE_LEVEL, 255, cv2.THRESH_TOZERO)
    _, light = cv2.threshold(light, FEATURE_LEVEL, 255, cv2.THRESH_TOZERO)
    return cv2.sumElems(dark)[0], cv2.sumElems(light)[0]


def _hat_sums(small):
    """(thin dark features, thin light features): the sums of the black-hat and the top-hat of ``small``."""
    kernel = _kernel((5, 5))
    return _feature_sums(cv2.morphologyEx(small, cv2.MORPH_BLACKHAT, kernel),
                         cv2.morphologyEx(small, cv2.MORPH_TOPHAT, kernel))


def _wide_dark_strokes(coarse, light):
    """A marker digit filling much of the frame, read as dark ink on the coarse copy ``coarse``: its
    strokes, too wide for the hats at half size (which found thin light features summing to ``light``
    there: gaps between rulings, a shadow's rim), are thin dark features here, and clearly win: the
    light ones at most COARSE_DARK x the dark ones, and the dark ones at least COARSE_EVIDENCE x
    ``light``. (White ink on a dark board keeps the light reading: its thin strokes give the half-size
    copy light features 3-50x the coarse copy's dark ones.)"""
    dark_wide, light_wide = _hat_sums(coarse)
    return light_wide <= COARSE_DARK * dark_wide and dark_wide >= COARSE_EVIDENCE * light


def _features_around_median(small):
    """(dark, light) feature sums measured against the 7x7 median (``small``: the half-size copy)."""
    median = cv2.medianBlur(small, MEDIAN_WINDOW)
    return _feature_sums(cv2.subtract(median, small), cv2.subtract(small, median))


def _ink_coverage(gray_work):
    """Fraction of the picture that reads as ink (above INK_FLOOR) when its ink is taken to be dark."""
    ink = ink_from_gray(gray_work, paper_from_gray(gray_work))
    _, inked = cv2.threshold(ink, INK_FLOOR * 255.0, 255, cv2.THRESH_BINARY)
    return cv2.countNonZero(inked) / float(inked.size)


def paper_from_gray(gray_work):
    """Estimate the paper's brightness with the ink removed, at the working size (uint8).

    A closing (max then min filter) removes dark strokes thinner than its kernel but keeps the
    edges of shadows where they are (a plain max filter would make a dark band there). It is made
    on a 1/4-size copy and smoothed, which follows a sharp edge only roughly: beyond the edge of a
    page lying on a darker desk it stayed brighter than the desk for a few pixels, a rim of "ink"
    around the page that merged with the digits near it into one page-sized box. So where the same
    closing at the working size, which keeps such an edge sharp, is darker even when multiplied by
    EDGE_MARGIN, it is taken instead (times EDGE_MARGIN: elsewhere the two agree within a few
    percent, and the smoother coarse one is kept there)."""
    h, w = gray_work.shape
    small_w, small_h = max(4, w // PAPER_SHRINK), max(4, h // PAPER_SHRINK)
    small = cv2.resize(gray_work, (small_w, small_h), interpolation=cv2.INTER_AREA)
    side = _paper_kernel(w, h)
    small = cv2.morphologyEx(small, cv2.MORPH_CLOSE, _kernel((side, side)))
    small = cv2.blur(small, (3, 3))
    coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    reach = PAPER_SHRINK * side + 1
    sharp = cv2.morphologyEx(gray_work, cv2.MORPH_CLOSE, _kernel((reach, reach)))
    return cv2.min(coarse, cv2.convertScaleAbs(sharp, alpha=EDGE_MARGIN))


def _paper_kernel(work_w, work_h):
    """The closing's side at 1/PAPER_SHRINK size: PAPER_KERNEL up to a working size of WORK_SIDE, and
    as wide relative to a bigger one (a region of interest at up to its full resolution), where the
    strokes of digits filling the view are up to 3x as wide; a fixed kernel left their cores in the
    paper and the strokes hollow (1920x1440 frames with 120-360 px digits at 960x720: 87 % of the
    digits read, against 99 % at 640x480)."""
    return max(PAPER_KERNEL, int(round(PAPER_KERNEL * max(work_w, work_h) / float(WORK_SIDE))))


def ink_from_gray(gray, paper):
    """uint8 ink map (255 = black ink, 0 = paper) from gray and paper of the same size."""
    ratio = cv2.divide(gray, cv2.max(paper, MIN_PAPER_LEVEL), scale=255.0)  # paper -> 255, ink darker
    return cv2.bitwise_not(ratio)


# --------------------------------------------------------------------------
# Components -> digit boxes
# --------------------------------------------------------------------------


def _merge_pair(a, b):
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)


def _should_merge(a, b):
    """Are boxes a and b (x, y, w, h) pieces of one digit (a stroke with a gap, a detached bar)?"""
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    big_h, small_h = max(ah, bh), min(ah, bh)
    x_overlap = min(ax0 + aw, bx0 + bw) - max(ax0, bx0)
    y_overlap = min(ay0 + ah, by0 + bh) - max(ay0, by0)
    merged = _merge_pair(a, b)
    if merged[2] > MERGED_MAX_WIDTH_OVER_HEIGHT * merged[3]:
        return False
    tolerance = max(3.0, MERGE_GAP * big_h)
    # Boxes that overlap a lot: one digit.
    if x_overlap > 0 and y_overlap > 0 and x_overlap * y_overlap >= 0.3 * min(aw * ah, bw * bh):
        return True
    # Stacked pieces (a 5's bar over its body, a 4's or 7's stem under its top), unless the result
    # is much taller than its bigger piece: two digits in two rows.
    if x_overlap >= STACKED_OVERLAP * min(aw, bw) and -y_overlap <= tolerance:
        if merged[3] <= MERGED_MAX_GROWTH * big_h or small_h < FRAGMENT_HEIGHT * big_h or -y_overlap <= 2:
            return True  # (two halves of a broken 3 or 8 are allowed when they nearly touch)
    # A small fragment right next to a big piece.
    gap = max(-x_overlap, -y_overlap)
    if small_h < FRAGMENT_HEIGHT * big_h and gap <= max(tolerance, FRAGMENT_GAP * big_h):
        return True
    return _broken_stroke(a, b, x_overlap, y_overlap, tolerance) or _detached_bar(a, b)


def _detached_bar(a, b):
    """A 5's top bar written apart from its body: a flat piece (not longer than the body is tall)
    floating above the body's top, starting over it or a little to its right."""
    bar, body = (a, b) if a[3] < b[3] else (b, a)
    bx, by, bw, bh = bar
    x, y, w, h = body
    if bw < BAR_ASPECT * bh or not BAR_MIN_WIDTH * h <= bw <= 1.5 * h:
        return False  # not flat, a speck or a ruling's stub, or a line longer than a 5's bar
    reach = BAR_GAP * h
    above = by + bh <= y + 0.25 * h and y - (by + bh) <= reach
    beside = x - 0.2 * h <= bx <= x + w + reach
    return above and beside


def _broken_stroke(a, b, x_overlap, y_overlap, tolerance):
    """Two thin pieces one above the other, in (nearly) the same columns: one pen stroke (a light 1)
    broken by the threshold."""
    thin = MIN_WIDTH_PX <= a[2] <= THIN_STROKE * a[3] and MIN_WIDTH_PX <= b[2] <= THIN_STROKE * b[3]
    return thin and -x_overlap <= 1 and 0 <= -y_overlap <= tolerance


def _gap(a, b):
    """The gap between boxes a and b (x, y, w, h): the larger of the x and y gaps, negative where they overlap."""
    return max(max(a[0], b[0]) - min(a[0] + a[2], b[0] + b[2]), max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3]))


def _far_apart(a, b):
    """True when boxes a and b are too far apart for any rule of ``_should_merge`` (a quick pre-check)."""
    gap = _gap(a, b)
    taller = max(a[3], b[3])
    if gap <= max(3.0, max(MERGE_GAP, FRAGMENT_GAP) * taller):
        return False
    return gap > BAR_GAP * taller or not _detached_bar(a, b)  # only a 5's bar reaches that far


def _within_reach(corners, picked):
    """numpy bool [len(picked), boxes]: True where box ``picked[r]`` and a box (rows x0, y0, x1, y1 of
    ``corners``) may be close enough to merge, where ``_far_apart`` does not already say no by the gap
    alone."""
    x0, y0, x1, y1 = corners.T
    px0, py0, px1, py1 = corners[picked].T[:, :, None]
    gap = np.maximum(np.maximum(px0, x0) - np.minimum(px1, x1), np.maximum(py0, y0) - np.minimum(py1, y1))
    taller = np.maximum(py1 - py0, y1 - y0)
    return gap <= np.maximum(np.maximum(3.0, max(MERGE_GAP, FRAGMENT_GAP) * taller), BAR_GAP * taller)


def _near_pairs(corners):
    """Index pairs (i, j), i < j, in order, of the boxes (rows x0, y0, x1, y1) ``_within_reach``."""
    rows, cols = np.nonzero(np.triu(_within_reach(corners, slice(None)), 1))
    return list(zip(rows.tolist(), cols.tolist()))  # noqa: B905 (Python 3.6)


def _neighbours(i, boxes, alive, corners):
    """The live boxes that box i (just grown) may merge with: all of them, or with ``corners`` (rows
    x0, y0, x1, y1, updated here) those ``_within_reach``."""
    if corners is None:
        return [k for k in range(len(boxes)) if alive[k] and k != i]
    x, y, w, h = boxes[i]
    corners[i] = (x, y, x + w, y + h)
    return [k for k in np.nonzero(_within_reach(corners, [i])[0])[0].tolist() if alive[k] and k != i]


def merge_fragments(boxes):
    """Merge boxes that are pieces of one digit; returns (merged boxes, groups of input indices).

    Greedy: the first mergeable pair (in index order) is merged, then the search starts over.
    ``_should_merge`` depends only on the two boxes, so a pair found apart stays apart until one of
    its boxes grows. The pairs still to check wait in a heap in index order, tagged with how often
    each box had grown: a merge adds the grown box's pairs, and stale ones are dropped. From
    FEW_PIECES boxes on, only pairs within reach (numpy, all at once) are checked. Same result as
    checking every pair after every merge, at a fraction of the cost: a ruled page in shadow
    (68 pieces) 4.2 -> 0.35 ms, 400 specks 220 -> 4.4 ms.
    """
    boxes = [tuple(int(v) for v in b) for b in boxes]
    n = len(boxes)
    groups = [[i] for i in range(n)]
    corners = None
    if n >= FEW_PIECES:
        corners = np.array([(x, y, x + w, y + h) for x, y, w, h in boxes], dtype=np.int64)
        heap = [(i, j, 0, 0) for i, j in _near_pairs(corners)]  # sorted, so already a heap
    else:
        heap = [(i, j, 0, 0) for i in range(n) for j in range(i + 1, n)]
    alive = [True] * n
    grown = [0] * n
    while heap:
        i, j, grown_i, grown_j = heapq.heappop(heap)
        if not (alive[i] and alive[j]) or grown[i] != grown_i or grown[j] != grown_j:
            continue  # one of the two has merged or grown since
        a, b = boxes[i], boxes[j]
        if _far_apart(a, b) or not _should_merge(a, b):
            continue
        boxes[i] = _merge_pair(a, b)
        groups[i].extend(groups[j])
        alive[j] = False
        grown[i] += 1
        for k in _neighbours(i, boxes, alive, corners):
            heapq.heappush(heap, (k, i, grown[k], grown[i]) if k < i else (i, k, grown[i], grown[k]))
    return [boxes[k] for k in range(n) if alive[k]], [groups[k] for k in range(n) if alive[k]]


def _band_max(sums):
    """Largest sum over 3 neighbouring rows (columns): a slanted, broken line spreads over a few."""
    if sums.size < 3:
        return int(sums.max()) if sums.size else 0
    return int((sums[:-2] + sums[1:-1] + sums[2:]).max())


def remove_ruled_lines(mask, length, vertical_length=None):
    """Drop long straight horizontal and vertical runs (rulings, margin lines) from ``mask``.

    A line's mask is often broken (noise at the threshold) and drifts by a pixel or two over
    the frame (perspective), so the mask is first smeared along the line and by one pixel across
    it; runs that then stay longer than ``length`` are lines. Pixels of pen strokes that cross a
    line (long runs across it) are kept. The search runs at half size; it is skipped when a
    row/column projection shows no line.
    """
    vertical_length = vertical_length or length
    rows = cv2.reduce(mask, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    columns = cv2.reduce(mask, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    horizontal = _band_max(rows) >= 255 * length // 2
    vertical = _band_max(columns) >= 255 * vertical_length // 2
    if not horizontal and not vertical:
        return mask
    h, w = mask.shape
    half = cv2.resize(mask, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    _, half = cv2.threshold(half, 0, 255, cv2.THRESH_BINARY)  # any ink in the 2x2 cell
    gap = LINE_GAP // 2 + 1
    out = mask
    for needed, smear, run, across in (
        (horizontal, (2, gap), (1, max(2, length // 2)), (CROSSING_RUN, 1)),
        (vertical, (gap, 2), (max(2, vertical_length // 2), 1), (1, CROSSING_RUN)),
    ):
        if not needed:
            continue
        # An opening (erode, then dilate) is empty exactly when its erosion is: usually it is (the
        # projection's hint was a row or column of digits), and the dilation is skipped.
        cores = cv2.erode(cv2.dilate(half, _kernel(smear)), _kernel(run))
        if not cv2.countNonZero(cores):
            continue
        lines = cv2.dilate(cores, _kernel(run), anchor=_second_anchor(run))
        if out is mask:
            out = mask.copy()
        _remove_lines(out, mask, lines, across)
    return out


def _remove_lines(out, mask, lines_half, across):
    """Clear from ``out`` the pixels of ``mask`` under the (half-size) ``lines_half``, except the pixels
    of pen strokes crossing them (runs of ``across`` in ``mask``). Works on the lines' bounding box only."""
    h, w = mask.shape
    if (w, h) != (2 * lines_half.shape[1], 2 * lines_half.shape[0]):  # odd size: the general path
        lines = cv2.resize(lines_half, (w, h), interpolation=cv2.INTER_NEAREST)
        strokes = _opened(mask, across)
        out[:] = cv2.subtract(out, cv2.subtract(cv2.bitwise_and(lines, mask), strokes))
        return
    lx, ly, lw, lh = cv2.boundingRect(lines_half)
    x0, y0, x1, y1 = 2 * lx, 2 * ly, 2 * (lx + lw), 2 * (ly + lh)
    lines = cv2.resize(lines_half[ly : ly + lh, lx : lx + lw], (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    # The opening at a pixel only sees pixels within one kernel length: open a margin around the box.
    my, mx = across
    sy0, sx0, sy1, sx1 = max(0, y0 - my), max(0, x0 - mx), min(h, y1 + my), min(w, x1 + mx)
    strokes = _opened(mask[sy0:sy1, sx0:sx1], across)
    strokes = strokes[y0 - sy0 : y1 - sy0, x0 - sx0 : x1 - sx0]
    line_ink = cv2.subtract(cv2.bitwise_and(lines, mask[y0:y1, x0:x1]), strokes)
    out[y0:y1, x0:x1] = cv2.subtract(out[y0:y1, x0:x1], line_ink)


def _normalise_roi(roi, shape):
    height, width = shape[:2]
    if roi is None:
        return 0, 0, width, height
    x, y, w, h = [int(round(float(v))) for v in roi]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return x0, y0, x1 - x0, y1 - y0


def _empty_batch(pre, layout, debug=None):
    return DigitBatch(boxes=[], batch=batch_from_crops([], pre, layout), crops=[], debug=debug)


def reading_order(items, box=lambda item: item[0]):
    """``items`` in reading order, ``box(item)`` giving each one's (x, y, w, h): grouped into lines,
    top to bottom, each left to right. An item joins the line above it when its centre lies within
    half a digit's height of that line's mean centre (the taller of its own and the line's median
    height), so a line written slightly uphill or with digits of uneven height stays one line (rows
    cut at multiples of the median height split such a line where it crossed a cut)."""
    lines = []  # [[centre sum, [heights], [items]]]
    for item in sorted(items, key=lambda it: box(it)[1] + box(it)[3] / 2.0):
        _, y, _, h = box(item)
        centre = y + h / 2.0
        if lines:
            line = lines[-1]
            heights = sorted(line[1])
            median = (heights[(len(heights) - 1) // 2] + heights[len(heights) // 2]) / 2.0
            if abs(centre - line[0] / len(line[2])) <= 0.5 * max(median, h):
                line[0] += centre
                line[1].append(h)
                line[2].append(item)
                continue
        lines.append([centre, [h], [item]])
    return [item for line in lines for item in sorted(line[2], key=lambda it: box(it)[0])]


class _Work(NamedTuple):
    """One frame at the working resolution."""

    image: np.ndarray  # the ROI of the uint8 input frame at full resolution
    paper: np.ndarray  # paper brightness at the working size
    mask: np.ndarray  # binary ink mask at the working size
    ink: np.ndarray  # ink map (0 paper .. 255 black) at the working size
    strong_level: float  # a digit must have ink at least this dark somewhere
    strong: float  # the frame's strong-ink level
    scale_x: float
    scale_y: float
    dark: bool
    floor: float  # ink below this is never ink here: INK_FLOOR, more on a noisy frame, less on a quiet faint one
    raw_ink: np.ndarray  # ``ink`` before the noise gate (``_above_the_noise``): the noise measures read it
    noisy: bool  # the sensor noise is high (``_above_the_noise`` gated it)
    balance: Optional[np.ndarray]  # the LUT that makes the paper neutral (``paper_balance``), or None
    threshold: float  # the ink map's level that ``mask`` starts from


def _full_resolution(work, x0, y0, x1, y1):
    """The frame's pixels under working-size region [x0:x1, y0:y1] (a view of ``work.image``)."""
    full_h, full_w = work.image.shape[:2]
    fx0, fy0 = _full_corner(work, x0, y0)
    fx1 = min(full_w, max(fx0 + 1, int(np.ceil(x1 / work.scale_x))))
    fy1 = min(full_h, max(fy0 + 1, int(np.ceil(y1 / work.scale_y))))
    return work.image[fy0:fy1, fx0:fx1]


def _full_corner(work, x0, y0):
    """The frame's pixel (x, y) at the corner of working-size region [x0:, y0:] (``_full_resolution``'s)."""
    return max(0, int(x0 / work.scale_x)), max(0, int(y0 / work.scale_y))


def _full_resolution_ink(work, x0, y0, x1, y1):
    """The ink map of the frame's pixels under working-size region [x0:x1, y0:y1], at full resolution."""
    gray = darkness_source(balanced(_full_resolution(work, x0, y0, x1, y1), work.balance))
    if work.noisy:
        gray = cv2.medianBlur(gray, NOISY_CROP_MEDIAN)
    if not work.dark:
        gray = cv2.bitwise_not(gray)
    size = (gray.shape[1], gray.shape[0])
    paper = cv2.resize(work.paper[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR)
    return ink_from_gray(gray, paper)


def _filled(contours, box):
    """uint8 mask of ``box`` (x, y, w, h) with the ``contours`` (frame coordinates) drawn filled."""
    x, y, w, h = box
    out = np.zeros((h, w), np.uint8)
    cv2.drawContours(out, contours, -1, 255, -1, offset=(-x, -y))
    return out


def _crop_for_digit(work, contours, box, enough_pixels, columns=None):
    """White-on-black uint8 crop of one digit, cut to its own strokes.

    A digit at least ``enough_pixels`` tall at the working size is cut from the working ink map
    (it is downscaled to the model's box anyway); smaller ones from the full-resolution frame.
    ``columns``: (left, right), working size: only the strokes in those columns (a piece of a
    number cut from its neighbours, ``Numbers``), not the neighbours' near its box.
    """
    bx, by, bw, bh = box
    wh, ww = work.mask.shape
    pad = max(1, int(round(0.1 * max(bw, bh))))
    x0, y0 = max(0, bx - pad), max(0, by - pad)
    x1, y1 = min(ww, bx + bw + pad), min(wh, by + bh + pad)
    # The digit's own strokes (filled outlines at the working size), grown a little for soft edges.
    own = _filled(contours, (x0, y0, x1 - x0, y1 - y0))
    # Only the strokes inside the box (a digit split off its neighbour shares their outline).
    own[:, : max(0, bx - x0 - 1)] = 0
    own[:, bx - x0 + bw + 1 :] = 0
    own[: max(0, by - y0 - 1)] = 0  # (and one of two digits stacked on ruled lines, from the other)
    own[by - y0 + bh + 1 :] = 0
    if columns is not None:
        own[:, : max(0, columns[0] - x0)] = 0
        own[:, max(0, columns[1] - x0) :] = 0
    if bh >= enough_pixels or work.scale_x >= 1.0:
        ink = work.ink[y0:y1, x0:x1]
        own = cv2.dilate(own, _kernel((3, 3)))
    else:
        ink = _full_resolution_ink(work, x0, y0, x1, y1)
        size = (ink.shape[1], ink.shape[0])
        grow = 2 * max(1, int(round(1.0 / work.scale_x))) + 1
        if grow == 5 and size == (2 * own.shape[1], 2 * own.shape[0]):
            # Exactly 2x: a 3x3 dilation before the nearest-neighbour upscale is the same as a
            # 5x5 one after it (each pixel becomes a 2x2 block), on a quarter of the pixels.
            own = cv2.resize(cv2.dilate(own, _kernel((3, 3))), size, interpolation=cv2.INTER_NEAREST)
        else:
            own = cv2.resize(own, size, interpolation=cv2.INTER_NEAREST)
            own = cv2.dilate(own, _kernel((grow, grow)))
    return _stretched(cv2.bitwise_and(ink, own), own)


def _stretched(ink, own):
    """A crop's ``ink`` (cut to the mask ``own``) contrast-stretched: the stroke core becomes white,
    faint ink (rulings, paper texture) black."""
    strong = _quantile(ink, 0.95, own)
    floor, top = int(CROP_FLOOR * strong), CROP_TOP * strong
    if top - floor < 4:
        return np.zeros_like(ink)
    return cv2.convertScaleAbs(cv2.subtract(ink, floor), alpha=255.0 / (top - floor))


def _noise_floor(ink):
    """NOISE_FLOOR_K x the median difference between the ink map and its 3x3 mean (every other row):
    0-1 on a camera frame in good light, 4-7 in light x0.2-0.35 with sensor noise."""
    detail = cv2.absdiff(ink, cv2.blur(ink, (3, 3)))
    return NOISE_FLOOR_K * _quantile(detail[::2], 0.5)


def _ink_floor(ink, strong):
    """(floor, noise measure) for a frame whose strong-ink level is ``strong``.

    Where no strong ink sets the threshold (an empty page, faint ink), the floor decides what is
    ink, and it follows the sensor noise: in poor light noise crosses the fixed INK_FLOOR and its
    specks clump into "digits" (whose darkest ink must then also stand above the noise); on a quiet
    frame faded ink lies under it. Frames with strong ink never measure the noise (their threshold
    is above NOISE_FLOOR_MAX)."""
    fixed = INK_FLOOR * 255.0
    if INK_LOW * strong >= NOISE_FLOOR_MAX:
        return fixed, 0.0
    noise = _noise_floor(ink)
    if noise <= QUIET_NOISE and INK_LOW * strong < fixed:
        return QUIET_FLOOR * 255.0, noise
    return max(fixed, min(NOISE_FLOOR_MAX, noise)), noise


def _paper_noise(gray, ink):
    """(``|2 g - left - right|`` on every other row, the mask of the paper's pixels there: ink under
    INK_FLOOR). Along the rows, so that rulings (and, at a median, a grid's few columns) are no noise."""
    rows = gray[::2]
    second = cv2.convertScaleAbs(cv2.filter2D(rows, cv2.CV_16S, _ROW_SECOND_DIFFERENCE))
    return second, cv2.compare(ink[::2], INK_FLOOR * 255.0, cv2.CMP_LT)


def _noise_sigma(second, paper_pixels):
    """The sensor noise's sigma in gray levels, from ``_paper_noise``: the median of ``second`` over
    the paper's pixels, over SECOND_PER_SIGMA."""
    return _quantile(second, 0.5, paper_pixels) / SECOND_PER_SIGMA


def _above_the_noise(gray, paper, ink):
    """(gray, paper, ink, gate) for a noisy frame (the sensor noise at least NOISY_FRAME of the paper's
    mean level: poor light with the camera's gain up); (gray, paper, ink, None) for any other.

    ``ink = 1 - gray / paper`` divides the sensor noise by the paper's level: where a shadow or the
    vignetting darkens the paper to a few tens of gray levels, the noise alone reaches the threshold
    and its specks clump into "digits" or swell real ones. On such a frame the working picture is
    smoothed with a 3x3 median (which keeps stroke edges), and the gate (255 or 0) keeps ink only
    where the paper is more than NOISE_SIGMAS x the sensor noise (``_noise_sigma``, measured before the
    median) brighter than the pixel. Detection thresholds and measures the ink as on any frame, then
    clears what the gate does not keep from its mask and its ink map. (On every frame, a gate broke
    the long "ink" along a shadow's edge into digit-sized pieces; judged by the ink map's own noise,
    dense rulings made frames noisy and the median erased small digits' strokes.) The test is a
    count: whether most of the paper's pixels are over the noise level that would make it noisy."""
    second, paper_pixels = _paper_noise(gray, ink)
    level = SECOND_PER_SIGMA * NOISY_FRAME * max(MIN_PAPER_LEVEL, cv2.mean(paper)[0])
    noisy = cv2.bitwise_and(cv2.compare(second, level, cv2.CMP_GE), paper_pixels)
    if 2 * cv2.countNonZero(noisy) <= cv2.countNonZero(paper_pixels):
        return gray, paper, ink, None
    sigma = _noise_sigma(second, paper_pixels)
    gray = cv2.medianBlur(gray, 3)
    paper = paper_from_gray(gray)
    ink = ink_from_gray(gray, paper)
    _, gate = cv2.threshold(cv2.subtract(paper, gray), NOISE_SIGMAS * sigma, 255, cv2.THRESH_BINARY)
    return gray, paper, ink, gate


def _ink_mask(ink, threshold, work_w, work_h):
    """The binary ink mask at ``threshold`` without ruled lines; None when it looks like noise or texture."""
    _, mask = cv2.threshold(ink, threshold, 255, cv2.THRESH_BINARY)
    return _lines_removed_unless_noise(mask, work_w, work_h)


def _lines_removed_unless_noise(mask, work_w, work_h):
    """A binary ink mask without ruled lines; None when it looks like noise or texture."""
    if cv2.countNonZero(mask) > MAX_INK_COVERAGE * mask.size:
        return None
    mask = remove_ruled_lines(mask, max(15, int(LINE_FRACTION * work_w)), max(15, int(VERTICAL_LINE_FRACTION * work_h)))
    return None if _looks_like_noise(mask) else mask


def _looks_like_noise(mask):
    """Too much 'ink', or ink that is mostly isolated specks (which a 2x2 opening removes)."""
    inked = cv2.countNonZero(mask)
    if inked > MAX_INK_COVERAGE * mask.size:
        return True
    if inked < NOISE_CHECK_COVERAGE * mask.size:
        return False
    # The 2x2 opening keeps at least its erosion (the kernel holds its anchor): when the erosion
    # alone keeps enough, so does the opening, and its dilation is skipped.
    cores = cv2.erode(mask, _kernel((2, 2)))
    if cv2.countNonZero(cores) >= NOISE_SOLID * inked:
        return False
    return cv2.countNonZero(cv2.dilate(cores, _kernel((2, 2)))) < NOISE_SOLID * inked


def work_scale(h, w):
    """The working size of an ``h`` x ``w`` frame (or ROI), as a fraction of it: its longer side at
    WORK_SIDE or its shorter at WORK_SHORT_SIDE, whichever is bigger, and never enlarged.

    Every rule was tuned on 640x480 frames at half size. A bigger frame used to work at half its
    size too (up to 960 px), for the detail of small digits, but twice the detail relative to the page
    is twice the sensor noise, rulings and grid lines the 640x480 picture averages away: stress cases
    enlarged 2x (a 1280x960 camera) read worse in poor light, faded ink and on notebook pages, with up
    to 45 false boxes in 30 frames where 640x480 had none. At the same picture as 640x480 they read
    as 640x480 does (digits from 3 % of the frame's shorter side up, as before). Small digits in a big
    frame keep their detail where it counts: the crops of digits under DETAIL_FACTOR model boxes at the
    working size are cut from the full-resolution frame."""
    return min(1.0, max(WORK_SIDE / float(max(h, w)), WORK_SHORT_SIDE / float(min(h, w))))


def _shrunk(image, width, height):
    """``image`` at ``width`` x ``height`` (INTER_AREA; INTER_LINEAR where that enlarges it). By a whole
    factor first where it is at least 2, on OpenCV's fast INTER_AREA path, then by the rest: 1280x720 to
    427x240 in 1.0 ms instead of 1.9, 1920x1080 in 2.1 instead of 4.3 (its last factor - 1 columns and
    rows are left out: within the border rule's margin)."""
    h, w = image.shape[:2]
    if width > w or height > h:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    factor = min(w // width, h // height)
    if factor >= 2:
        image = cv2.resize(image[: h // factor * factor, : w // factor * factor], (w // factor, h // factor),
                           interpolation=cv2.INTER_AREA)
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _work_from_frame(image, polarity, side=None):
    """The working pictures of ``image`` (``_Work``) and the debug images; ``side``: the working size's
    longer side (default: ``work_scale``'s)."""
    h, w = image.shape[:2]
    scale = work_scale(h, w) if side is None else side / float(max(h, w))
    work_w, work_h = max(8, int(round(w * scale))), max(8, int(round(h * scale)))
    if (work_w, work_h) != (w, h):
        small = _shrunk(image, work_w, work_h)
    else:
        small = image
    gray = darkness_source(small)
    if polarity == "auto":
        dark = ink_is_dark(gray)
    else:
        dark = polarity != "light"
    if not dark:
        gray = cv2.bitwise_not(gray)
    gray, paper, ink, gate, strong = _inked(gray)
    balance = paper_balance(small) if dark and strong < BALANCE_FAINT * 255.0 else None
    unbalanced_floor = None
    if balance is not None:  # faint ink on tinted paper: read it where the paper is bright
        unbalanced_floor = _ink_floor(ink, strong)
        gray, paper, ink, gate, strong = _inked(darkness_source(balanced(small, balance)))
    # Hysteresis: strokes are traced down to a low level, but a digit needs some strong ink.
    fixed = INK_FLOOR * 255.0
    threshold = max(fixed, INK_LOW * strong)
    floor, noise = _ink_floor(ink, strong)
    if unbalanced_floor is not None:  # (the balance's gains must not lower the noise floor)
        floor, noise = max(floor, unbalanced_floor[0]), max(noise, unbalanced_floor[1])
    low = min(threshold, max(floor, INK_LOW * strong))  # a quiet floor lowers it; a noisy one acts below
    mask = _ink_mask(ink, low, work_w, work_h)
    if mask is None and low < threshold:
        # The quiet floor turned something into specks (half-visible rulings): the fixed floor's reading.
        floor, low = fixed, threshold
        mask = _ink_mask(ink, low, work_w, work_h)
    if mask is None:
        mask = np.zeros_like(ink)
    elif floor > low:  # (after the noise check, which judges the specks at the fixed floor)
        mask = cv2.bitwise_and(mask, cv2.threshold(ink, floor, 255, cv2.THRESH_BINARY)[1])
        low = floor
    threshold = low
    strong_level = max(floor, INK_RELATIVE * strong, PEAK_OVER_NOISE * noise)
    raw_ink = ink
    if gate is not None:
        mask, ink = cv2.bitwise_and(mask, gate), cv2.bitwise_and(ink, gate)
    mask = _closed(mask, (2, 2))
    work = _Work(image, paper, mask, ink, strong_level, float(strong), float(work_w) / w, float(work_h) / h, dark,
                 floor, raw_ink, gate is not None, balance, float(threshold))
    return work, {"ink": ink, "mask": mask, "threshold": threshold, "dark": dark}


def _inked(gray):
    """(gray, paper, ink, gate, strong) of a working-size ink image: ``_above_the_noise``'s pictures and
    the strong-ink level."""
    paper = paper_from_gray(gray)
    gray, paper, ink, gate = _above_the_noise(gray, paper, ink_from_gray(gray, paper))
    return gray, paper, ink, gate, _quantile(ink[::2], STRONG_INK_QUANTILE)


def _inside_dark_region(paper, box):
    """True when the 'paper' under the box is much darker than around it: a solid dark object."""
    x, y, w, h = box
    ph, pw = paper.shape
    cx, cy = x + w // 2, y + h // 2
    pad_x, pad_y = max(2, w // 4), max(2, h // 4)
    at = paper.item  # (a Python int per pixel: cheaper than numpy scalars)
    around = max(
        at(max(0, y - pad_y), cx),
        at(min(ph - 1, y + h + pad_y), cx),
        at(cy, max(0, x - pad_x)),
        at(cy, min(pw - 1, x + w + pad_x)),
    )
    return at(cy, cx) < DARK_REGION * around


def _paper_small(work):
    """The paper estimate at 1/PAPER_SHRINK of the working size (every PAPER_SHRINK-th pixel: it is
    smooth), for the page's level (its 90th percentile) and its dark regions."""
    return np.ascontiguousarray(work.paper[::PAPER_SHRINK, ::PAPER_SHRINK])


def _off_the_page(work, found):
    """``found`` without the candidates that lie on a patterned desk beside the page (wood grain).

    The grain's dark stripes are "ink" against its light ones, and the pieces the page's edge
    and the line removal leave of them look like small digits: 237 / 404 false boxes in 150
    frames of a page on a wood-grain desk. Such a candidate's "paper" is much darker than the
    page's (OTHER_SURFACE), inked all around it (SURFACE_TEXTURE: a plain coloured note is not)
    and of another colour (SURFACE_CHROMA: paper in a shadow keeps the page's colour). Needs a
    colour frame of dark ink on paper; the colour is only looked at for dark, inked surroundings
    (rare on a page)."""
    if not found or work.image.ndim != 3 or not work.dark:
        return found
    page_level = _quantile(_paper_small(work), 0.9)
    dim = OTHER_SURFACE * page_level
    paper_at = work.paper.item
    page = None
    out = []
    for candidate in found:
        x, y, w, h = candidate[0]
        if paper_at(y + h // 2, x + w // 2) < dim and _inked_around(work, candidate[0]):
            if page is None:
                page = _page_colour(work, page_level)
            if page.any() and float(np.abs(_surroundings_colour(work, candidate[0]) - page).sum()) >= SURFACE_CHROMA:
                continue  # (no page colour, all zeros: nothing to compare with)
        out.append(candidate)
    return out


def _chromaticity(mean_bgr):
    """Mean B, G, R over their sum: the colour without its brightness (numpy [3])."""
    mean = np.asarray(mean_bgr[:3], np.float64)
    return mean / max(float(mean.sum()), 1.0)


def _page_colour(work, level):
    """The page's chromaticity: the mean colour where the paper is at least 0.8 x ``level`` (1/4 size)."""
    ph, pw = work.paper.shape
    size = (max(1, pw // PAPER_SHRINK), max(1, ph // PAPER_SHRINK))
    small = cv2.resize(work.image, size, interpolation=cv2.INTER_NEAREST)
    paper = cv2.resize(work.paper, size, interpolation=cv2.INTER_NEAREST)
    bright = cv2.threshold(paper, 0.8 * level - 1, 255, cv2.THRESH_BINARY)[1]
    return _chromaticity(cv2.mean(small, mask=bright))


def _inked_around(work, box):
    """True when ink (above the floor) covers SURFACE_TEXTURE of the band half the box's height wide
    around it (working size): the grain's other stripes; paper around a digit is mostly bare."""
    x, y, w, h = box
    work_h, work_w = work.raw_ink.shape
    reach = max(1, h // 2)
    x0, y0 = max(0, x - reach), max(0, y - reach)
    x1, y1 = min(work_w, x + w + reach), min(work_h, y + h + reach)
    inked = cv2.threshold(work.raw_ink[y0:y1, x0:x1], work.floor, 255, cv2.THRESH_BINARY)[1]
    own = cv2.countNonZero(inked[y - y0 : y - y0 + h, x - x0 : x - x0 + w])
    band = (x1 - x0) * (y1 - y0) - w * h
    return band > 0 and cv2.countNonZero(inked) - own >= SURFACE_TEXTURE * band


def _surroundings_colour(work, box):
    """The chromaticity of the brighter half (the background, not the ink) of the box grown by
    SURFACE_AROUND x its size on each side, at full resolution (``_full_resolution``)."""
    x, y, w, h = box
    pad_x, pad_y = SURFACE_AROUND * w, SURFACE_AROUND * h
    region = np.ascontiguousarray(_full_resolution(work, x - pad_x, y - pad_y, x + w + pad_x, y + h + pad_y)[..., :3])
    darkness = darkness_source(region)
    background = cv2.threshold(darkness, _quantile(darkness, 0.5) - 1, 255, cv2.THRESH_BINARY)[1]
    return _chromaticity(cv2.mean(region, mask=background))


def _solid(work, box):
    """True when a box that the working-size mask fills is a filled shape: its core (ink at least
    SOLID_LEVEL of its darkest) has no counter and is convex (a blob, a square, a disc).

    Judged at full resolution, where a small bold digit (a marker 8, 12 px tall at the working
    size, which the mask fills) shows its counters (8, 0, 6, 9) or its bays (3, 5, 2)."""
    x, y, w, h = box
    ink = work.ink[y : y + h, x : x + w] if work.scale_x >= 1.0 else _full_resolution_ink(work, x, y, x + w, y + h)
    _, core = cv2.threshold(ink, SOLID_LEVEL * cv2.minMaxLoc(ink)[1], 255, cv2.THRESH_BINARY)
    contours, hierarchy = cv2.findContours(core, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)[-2:]
    if hierarchy is None:
        return True
    outer, biggest = None, 0.0
    for contour, link in zip(contours, hierarchy[0]):  # noqa: B905 (Python 3.6)
        area = cv2.contourArea(contour)
        if link[3] >= 0 and area >= MIN_COUNTER_AREA:
            return False  # a counter: a bold 0, 6, 8 or 9
        if link[3] < 0 and area > biggest:
            outer, biggest = contour, area
    hull = cv2.contourArea(cv2.convexHull(outer)) if outer is not None else 0.0
    return hull <= 0 or biggest >= SOLID_CONVEXITY * hull


def _with_rims(inked):
    """A box's stroke mask grown by one pixel: the strokes and their soft edges."""
    return cv2.dilate(inked, _kernel((3, 3)))


def _on_shadow_edge(work, box, peak):
    """True when the box is the blurred edge of a big shadow, which the 1/4-size paper estimate
    follows only roughly: the paper under it steps (lightest to darkest, as a fraction of the
    lightest) by more than SHADOW_EDGE x its darkest ink, and that ink is soft (its edges rise
    less than SHADOW_SOFTNESS x its peak per pixel, at the 90th percentile over its strokes and
    their one-pixel rims, where a pen's edge is steepest). ``peak``: the box's
    darkest ink, which the caller has already measured. Pen strokes are darker
    than the paper step under them even on a shadow's edge, and faded ones still have sharp edges."""
    x, y, w, h = box
    paper = work.paper[max(0, y - 2) : y + h + 2, max(0, x - 2) : x + w + 2]
    darkest, lightest = cv2.minMaxLoc(paper)[:2]
    step = (lightest - darkest) / max(1.0, lightest)
    if peak >= SHADOW_EDGE * step * 255.0 or peak <= 0:
        return False
    ink = work.ink[y : y + h, x : x + w]
    gx = cv2.Sobel(ink, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(ink, cv2.CV_32F, 0, 1)
    inked = work.mask[y : y + h, x : x + w]
    if not cv2.countNonZero(inked):
        return True
    edges = cv2.magnitude(gx, gy)[_with_rims(inked) > 0]  # (a stroke's core is flat: its rim is steep)
    return float(np.percentile(edges, 90)) < SHADOW_SOFTNESS * peak


def _border(work):
    """``_at_border``'s margin at ``work``'s working size: BORDER_PX, or BORDER_FULL_PX frame pixels
    where that is less (a big frame's small working size; at least a pixel)."""
    return min(BORDER_PX, max(1.0, BORDER_FULL_PX * min(work.scale_x, work.scale_y)))


def _at_border(box, width, height, margin=BORDER_PX):
    """Within ``margin`` pixels of the frame (or ROI) edge: paper edges, shadows, digits cut by the frame."""
    x, y, w, h = box
    return x < margin or y < margin or x + w > width - margin or y + h > height - margin


def _several_digits(height, piece_heights, min_h):
    """A merged group that is a chain of neighbouring digits rather than one broken digit:
    at least two digit-sized pieces, and much taller than the tallest of them."""
    if sum(1 for ph in piece_heights if ph >= 2 * min_h) < 2:
        return False
    return height > MERGED_MAX_SPAN * max(piece_heights)


def _outlines(mask, nested_h, offset=(0, 0)):
    """The outer outlines of ``mask``'s components, those inside another's hole included, less the
    enclosures: components with one inside a hole that is at least ``nested_h`` and NESTED_SHARE x
    that hole's height tall (a circle or a box drawn around a digit). With only the outermost
    outlines, an enclosure hid the digits inside it. A digit's counter holds at most a speck."""
    found = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE, offset=offset)
    contours, hierarchy = found[-2], found[-1]  # OpenCV 3 returns 3 values, OpenCV 4 two
    if hierarchy is None:
        return []
    links = hierarchy[0].tolist()  # (plain lists: a frame has few contours)
    parents = [link[3] for link in links]
    nested = [i for i, parent in enumerate(parents) if parent >= 0 and parents[parent] >= 0]
    if not nested:  # (most frames: holes, but nothing inside them)
        return _peel_rings(mask, contours, links, [i for i, parent in enumerate(parents) if parent < 0],
                           nested_h, offset)
    depth = [_depth(parents, i) for i in range(len(parents))]
    enclosures = set()
    for i in nested:
        if depth[i] % 2:
            continue  # (a hole in a component that lies in a hole)
        inner_h, hole_h = cv2.boundingRect(contours[i])[3], cv2.boundingRect(contours[parents[i]])[3]
        if inner_h >= nested_h and inner_h >= NESTED_SHARE * hole_h:
            enclosures.add(parents[parents[i]])
    return _peel_rings(mask, contours, links,
                       [i for i in range(len(contours)) if depth[i] % 2 == 0 and i not in enclosures], nested_h, offset)


def _peel_rings(mask, contours, links, kept, nested_h, offset):
    """The outlines ``kept`` (indices into ``contours``; ``links``: the hierarchy), each one that is a
    ring or a box drawn around a digit that touches it replaced by the digit's outlines (``_peeled``)."""
    out = []
    for i in kept:
        peeled = _peeled(mask, contours, links, i, nested_h, offset) if links[i][2] >= 0 else None
        out.extend(peeled or [contours[i]])
    return out


def _peeled(mask, contours, links, i, nested_h, offset):
    """The outlines of the digit inside ring ``i``, or None when ``i`` is no ring with a digit in it.

    A circle or a box drawn around a digit often touches it (or does at the re-trace's lower level),
    and the two are one component: the enclosure rule (a component inside another's hole) does not
    see it, and the digit was read with its ring (a 7 in a circle as a 0). A component whose holes
    take at least RING_HOLES of its outline's area, and whose outline fills at least RING_CONVEX of
    its convex hull (an ellipse or a box, not an 8), is peeled: its outer 1, 2 or 3 pixels (the ring's
    pen) are cut away. Where ink then covers at most RING_MOAT of the pixels along the inside of the
    cut (the ring is gone, a moat is left) and the tallest piece inside is RING_INNER_MIN-RING_INNER_MAX
    x the outline's height (and at most RING_INNER_MAX x its width), that piece alone is the digit (the
    other pieces are slivers of the ring). A 0 has nothing inside; a bold digit's holes are small."""
    outer = contours[i]
    area = cv2.contourArea(outer)
    holes, child = 0.0, links[i][2]
    while child >= 0:
        holes += cv2.contourArea(contours[child])
        child = links[child][0]
    if holes < RING_HOLES * area or area < RING_CONVEX * cv2.contourArea(cv2.convexHull(outer)):
        return None
    box = cv2.boundingRect(outer)
    x, y, w, h = box
    filled = _filled([outer], box)
    ox, oy = offset
    ink = cv2.bitwise_and(mask[y - oy : y - oy + h, x - ox : x - ox + w], filled)
    for pen in range(1, RING_PEEL + 1):
        interior = cv2.erode(filled, _kernel((2 * pen + 1, 2 * pen + 1)), borderType=cv2.BORDER_CONSTANT,
                             borderValue=0)  # (the outline touches its box: the box's edge is outside)
        rim = cv2.subtract(interior, cv2.erode(interior, _kernel((3, 3))))
        inside = cv2.bitwise_and(ink, interior)
        if cv2.countNonZero(cv2.bitwise_and(inside, rim)) > RING_MOAT * cv2.countNonZero(rim):
            continue  # the pen of the ring, or a digit's own stroke, still runs along the cut
        pieces = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y))[-2]
        if not pieces:
            continue
        tallest = max(pieces, key=lambda piece: cv2.boundingRect(piece)[3])
        _, _, tw, th = cv2.boundingRect(tallest)
        if th >= nested_h and RING_INNER_MIN * h <= th <= RING_INNER_MAX * h and tw <= RING_INNER_MAX * w:
            return [tallest]
    return None


def _depth(parents, i):
    """How many outlines enclose outline ``i`` (``parents``: the hierarchy's parent links)."""
    depth = 0
    while parents[i] >= 0:
        i, depth = parents[i], depth + 1
    return depth


def _candidates(work, min_h, max_pieces=400, small_h=None):
    """(digit-shaped groups of contours at the working size: [(box, contours, ink pixels)], the height
    of the tallest piece of ink off the frame's edge); ``small_h`` (default ``min_h``) is the
    smallest height a candidate may have."""
    small_h = min_h if small_h is None else small_h
    work_h, work_w = work.mask.shape
    contours = _outlines(work.mask, small_h)
    if not contours:
        return [], 0
    speck = max(2, int(0.12 * min_h))
    border = _border(work)
    pieces, piece_contours = [], []
    queue = [(contour, True) for contour in contours]
    for contour, may_cut in queue:  # (grows while it is read: the pieces cut off the border)
        box = cv2.boundingRect(contour)
        if max(box[2], box[3]) < speck or box[3] > MAX_DIGIT_FRACTION * work_h:
            continue
        if _at_border(box, work_w, work_h, border):
            if may_cut:
                queue.extend((piece, False) for piece in _without_thin_rows(work.mask, contour, box, border))
            continue
        if box[3] <= 2 and box[2] >= DASH_LENGTH * box[3]:
            continue  # a stub of a ruled line, not part of a digit
        if box[2] <= LINE_PIECE_WIDTH * box[3] and box[3] >= speck and _piece_of_a_line(work, box, contour):
            continue  # a piece of a long straight line (a slanted ruling or margin line), not of a digit
        pieces.append(box)
        piece_contours.append(contour)
    tallest = max([box[3] for box in pieces] or [0])
    if len(pieces) > max_pieces:  # a noise frame: keep the biggest pieces only
        order = sorted(range(len(pieces)), key=lambda i: -pieces[i][2] * pieces[i][3])[:max_pieces]
        pieces = [pieces[i] for i in order]
        piece_contours = [piece_contours[i] for i in order]
    merged, groups = merge_fragments(pieces)
    out = []
    queue = list(zip(merged, groups))  # noqa: B905 (Python 3.6)
    for box, group in queue:
        x, y, w, h = box
        digit_shaped = (
            small_h <= h <= MAX_DIGIT_FRACTION * work_h
            and w <= MAX_WIDTH_OVER_HEIGHT * h
            and w >= MIN_WIDTH_PX
            and not _several_digits(h, [pieces[g][3] for g in group], min_h)
            and (h <= MAX_HEIGHT_OVER_WIDTH * w
                 or (h <= LONE_STROKE * w and len(group) == 1 and _lone_stroke(work, box, piece_contours[group[0]])))
        )
        if not digit_shaped:
            if len(group) > 1:  # a chain of neighbours merged too far: try its pieces one by one
                queue.extend((pieces[g], [g]) for g in group)
            continue
        if _inside_dark_region(work.paper, box):
            continue  # the outline of a dark object (a phone, a shadowed hole), not handwriting
        if len(group) > 1 and w <= LINE_PIECE_WIDTH * h and _piece_of_a_line(
                work, box, np.concatenate([piece_contours[g] for g in group])):
            continue  # small pieces of a line, merged (each too short for its own axis to be sure)
        peak = _peak(work, box)
        if peak < work.strong_level:
            continue  # only faint marks: a ruling, a shadow edge, paper texture
        if _on_shadow_edge(work, box, peak):
            continue  # the soft edge of a shadow: the paper itself steps more than this "ink"
        ink_pixels = cv2.countNonZero(work.mask[y : y + h, x : x + w])
        if ink_pixels > MAX_FILL * w * h and w > SOLID_WIDTH * h and _solid(work, box):
            continue  # a solid dark region, not a pen stroke
        contours = [piece_contours[g] for g in group]
        out.extend((part, contours, ink_pixels) for part in split_touching(work.mask, box))
    return out, tallest


def _lone_stroke(work, box, contour):
    """True when a piece too thin for MAX_HEIGHT_OVER_WIDTH (a 1 written upright with a fine pen: a
    ballpoint's 2 px on an 80 px digit is 1-2 working pixels wide) stands alone on the paper: no
    other ink (LONE_INK x its darkest) within LONE_ENDS x its height of its top and bottom (a box's
    side meets its corners, a piece of a longer line its rest)."""
    x, y, w, h = box
    work_h, work_w = work.mask.shape
    reach = max(2, int(round(LONE_ENDS * h)))
    x0, y0 = max(0, x - reach), max(0, y - reach)
    x1, y1 = min(work_w, x + w + reach), min(work_h, y + h + reach)
    own = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.drawContours(own, [contour], -1, 255, -1, offset=(-x0, -y0))
    own = cv2.dilate(own, _kernel((3, 3)))  # (with its anti-aliased rim)
    # Strong ink only (the mask has lost what line removal took: a box's sides cut by the frame),
    # so that a ruling under a 1's foot is not "other ink".
    strong = cv2.threshold(work.ink[y0:y1, x0:x1], LONE_INK * _peak(work, box), 255, cv2.THRESH_BINARY)[1]
    foreign = cv2.subtract(strong, own)
    ends = (foreign[: y - y0 + reach], foreign[y + h - y0 - reach :])
    return not any(cv2.countNonZero(end) for end in ends)


def _piece_of_a_line(work, box, contour):
    """True when a thin, tall piece of ink (``contour``: its outline) runs on beyond both its ends
    along its own axis: a piece of a ruling or margin line that the line removal missed (slanted with
    the page and seen at a higher resolution than the removal's straight runs allow, then broken by
    the threshold into pieces that would merge into digits or pass as 1s). Its axis is the line fitted
    through its outline; along it, for LINE_REACH x its height (at least LINE_REACH_FRAME x the
    frame's) beyond each end, ink of at least LINE_INK x the piece's darkest, within a pixel across,
    must cover LINE_COVER of the way. An end whose way leaves the frame within LINE_REACH_MIN px is
    not asked. A 1 ends where its stroke does (paper beyond it, a ruling crossing it for a pixel or
    two), and the side of a 0 curves away from its axis within that reach."""
    x, y, w, h = box
    vx, vy, cx, cy = [float(v) for v in cv2.fitLine(contour, cv2.DIST_L2, 0, 0.01, 0.01).ravel()]
    if abs(vy) < 0.5:
        return False  # (a thin, tall piece runs up and down; this one does not)
    if vy < 0:
        vx, vy = -vx, -vy
    ink = work.ink
    work_h, work_w = ink.shape
    level = LINE_INK * _peak(work, box)
    reach = max(LINE_REACH_MIN, int(round(LINE_REACH * h)), int(round(LINE_REACH_FRAME * work_h)))
    steps = np.arange(1, reach + 1, dtype=np.float32)
    asked = 0
    for end, sign in ((y - cy, -1.0), (y + h - 1 - cy, 1.0)):
        t = end / vy + sign * steps
        xs = np.rint(cx + vx * t).astype(np.int32)
        ys = np.rint(cy + vy * t).astype(np.int32)
        inside = (xs >= 1) & (xs < work_w - 1) & (ys >= 0) & (ys < work_h)
        if np.count_nonzero(inside) < LINE_REACH_MIN:
            continue
        xs, ys = xs[inside], ys[inside]
        darkest = np.maximum(np.maximum(ink[ys, xs - 1], ink[ys, xs]), ink[ys, xs + 1])
        if np.count_nonzero(darkest >= level) < LINE_COVER * xs.size:
            return False
        asked += 1
    return asked > 0


def _without_thin_rows(mask, contour, box, border=BORDER_PX):
    """The contours of a component touching the frame's edge once its horizontal runs under
    THIN_ROWS pixels tall are cut, when that leaves nothing at the edge: a ruling's stub, darker near
    the edge than the line removal's threshold lets it see, joined a digit to the edge (which rules
    the digit out). A digit the frame cuts keeps a stroke at the edge and stays out: [] then."""
    x, y, w, h = box
    height, width = mask.shape
    own = _opened(cv2.bitwise_and(_filled([contour], box), mask[y : y + h, x : x + w]), (THIN_ROWS, 1))
    pieces = cv2.findContours(own, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y))[-2]
    if any(_at_border(cv2.boundingRect(piece), width, height, border) for piece in pieces):
        return []
    return pieces


def split_touching(mask, box, depth=3, min_part=None):
    """Split a wide box of digits written close together at the emptiest column between them.

    Only boxes wider than SPLIT_WIDTH x their height are looked at, and only a column with
    (almost) no ink, at least a narrow digit's width from either side, splits them, into parts at
    least ``min_part`` tall (default SPLIT_MIN_HEIGHT x the box's height).
    """
    x, y, w, h = box
    if depth <= 0 or w <= SPLIT_WIDTH * h:
        return [box]
    columns = _ink_per_line(mask, box, 0)
    side = max(2, int(SPLIT_SIDE * h))
    if w - 2 * side < 1:
        return [box]
    cut = side + _widest_gap(columns[side : w - side])
    if columns[cut] > max(1, SPLIT_INK * h):
        return [box]
    halves = []
    for px, pw in ((x, cut), (x + cut, w - cut)):
        half = _ink_box(mask, (px, y, pw, h))
        if half is None or half[3] < (SPLIT_MIN_HEIGHT * h if min_part is None else min_part):
            return [box]  # a tail or a bar, not a whole digit: keep the box as one
        halves.append(half)
    return [part for half in halves for part in split_touching(mask, half, depth - 1, min_part)]


def _ink_per_line(mask, box, axis):
    """Ink pixels of the 0/255 ``mask`` inside ``box`` per column (``axis`` 0) or per row (1)."""
    x, y, w, h = box
    return cv2.reduce(mask[y : y + h, x : x + w], axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() // 255


def _widest_gap(values):
    """The index of the first minimum of ``values``, or where that is 0 (an empty column), the middle
    of their longest run of zeros: the gap between two digits rather than a break inside one (a 9's
    loop that does not reach its stem)."""
    if values.min() > 0:
        return int(np.argmin(values))
    runs = _runs(values == 0)
    top, bottom = runs[int(np.argmax(runs[:, 1] - runs[:, 0]))]
    return int((top + bottom - 1) // 2)


def _runs(flags):
    """[[start, end), ...] of the runs of True in the 1-D bool array ``flags`` (an int array [N, 2])."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.astype(np.int8), [0]))))
    return edges.reshape(-1, 2)


def _trace(work, box, level, without_rulings=False):
    """The strokes at ``level`` that touch ``box``, in a window around it (``_without_rulings`` if
    ``without_rulings``) -> (their bounding box, their contours, the window (x0, y0, x1, y1)); (None,
    None, window) if none."""
    work_h, work_w = work.mask.shape
    x, y, w, h = box
    grow = max(w, h // 2)
    x0, y0 = max(0, x - grow), max(0, y - h // 2)
    x1, y1 = min(work_w, x + w + grow), min(work_h, y + h + h // 2)
    _, region = cv2.threshold(work.ink[y0:y1, x0:x1], level, 255, 0)
    if without_rulings:
        region = _without_rulings(region)
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, _kernel((3, 3)))
    traced = _outlines(region, ENCLOSED * h, offset=(x0, y0))
    touching = [c for c in traced if _overlap(cv2.boundingRect(c), box) > 0]
    if not touching:
        return None, None, (x0, y0, x1, y1)
    return cv2.boundingRect(np.concatenate(touching)), touching, (x0, y0, x1, y1)


def _without_rulings(region):
    """``region`` without the rows that ink crosses end to end.

    In a re-trace's window (``region``, thresholded) up to THIN_ROWS rows inked across at least
    RETRACE_LINE of its width are a ruling, which at the re-trace's level joins the digits it passes.
    The columns where a stroke crosses it (ink on both sides) are kept."""
    h, w = region.shape
    rows = cv2.reduce(region, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    full = rows >= 255 * RETRACE_LINE * w
    if not full.any():
        return region
    bands = [(int(top), int(bottom)) for top, bottom in _runs(full)
             if bottom - top <= THIN_ROWS]  # (a shadow's edge fills many rows)
    if not bands:
        return region
    out = region.copy()
    for top, bottom in bands:
        crossing = cv2.bitwise_and(region[max(0, top - 1)], region[min(h - 1, bottom)]).reshape(1, -1)
        out[top:bottom] = cv2.bitwise_and(region[top:bottom], np.repeat(crossing, bottom - top, axis=0))
    return out


def _inside(box, window):
    """The box does not reach the window's edge (the strokes did not run out of it)."""
    x, y, w, h = box
    x0, y0, x1, y1 = window
    return x > x0 and y > y0 and x + w < x1 and y + h < y1


def _retrace(work, found, sure_h=0):
    """Re-trace each candidate at a lower level relative to its own darkest ink.

    The frame-wide threshold can lose thin or light strokes (a fineliner 4 seen as two 1s, a
    pencil digit next to a marker one). Around each candidate the ink is thresholded again at
    RETRACE_LEVEL of the candidate's darkest ink; the strokes touching the candidate replace it
    if the result is still digit-shaped (rulings crossing it make it too wide: then it is kept
    as it was). Strokes that run out of the window are followed, window by window (up to
    RETRACE_STEPS more), within RETRACE_GROWTH of the candidate's height, or RETRACE_FAINT_GROWTH
    for a faint candidate (darkest ink under FAINT_PIECE of the frame's strong ink: a fragment
    of a fine-pen digit beside bold ones). Duplicates (two parts of one digit re-traced to the
    same box) are dropped. Candidates shorter than ``sure_h`` (a small digit, or a piece of a big one
    that rulings cut apart) are kept only when they re-trace as a digit: a piece re-traces into the
    rest of its digit, or into the rulings, and is dropped. Before one is dropped, its re-trace is
    tried once more without the rulings (``_without_rulings``): a faint digit written on a notebook's
    line, whose re-trace ran along the line.
    """
    if not found:
        return found
    out = []
    for box, contours, ink_pixels in found:
        local = _peak(work, box)
        level = max(work.floor, RETRACE_LEVEL * local)
        growth = RETRACE_FAINT_GROWTH if local < FAINT_PIECE * work.strong else RETRACE_GROWTH
        traced = _followed(work, box, level, growth)
        plausible = _plausible(work, traced, box, found, growth)
        if not plausible and box[3] < sure_h:  # to be dropped: once more, without the rulings it may follow
            traced = _followed(work, box, level, growth, without_rulings=True)
            plausible = _plausible(work, traced, box, found, growth)
        if plausible:
            out.append((traced[0], traced[1], ink_pixels))
        elif box[3] >= sure_h:
            out.append((box, contours, ink_pixels))
    return _drop_duplicates(out)


def _followed(work, box, level, growth, without_rulings=False):
    """``_trace`` of ``box`` at ``level``, its strokes followed out of the window (up to RETRACE_STEPS
    more windows, while within ``growth`` x its height) -> (box, contours, window)."""
    h = box[3]
    new, touching, window = _trace(work, box, level, without_rulings)
    for _ in range(RETRACE_STEPS):
        if new is None or _inside(new, window) or new[3] > growth * h or new[2] > MAX_WIDTH_OVER_HEIGHT * growth * h:
            break
        wider = _trace(work, new, level, without_rulings)
        if wider[0] is None:
            break
        new, touching, window = wider
    return new, touching, window


def _plausible(work, traced, box, found, growth):
    """The re-trace ``traced`` (``_followed``) of ``box`` is still one digit-shaped candidate."""
    new, touching, window = traced
    if new is None:
        return False
    work_h, work_w = work.mask.shape
    nx, ny, nw, nh = new
    return (
        nh <= growth * box[3]
        and nw <= MAX_WIDTH_OVER_HEIGHT * nh
        and nh <= MAX_HEIGHT_OVER_WIDTH * nw
        and nh <= MAX_DIGIT_FRACTION * work_h
        and not _at_border(new, work_w, work_h, _border(work))
        and _inside(new, window)  # not running out of the window
        and not _grown_sideways(new, touching, box, found)
        and not _grown_into(new, box, found)
        and not _grown_along_a_ruling(new, touching, box)
    )


def _grown_along_a_ruling(new, contours, box):
    """The re-trace ``new`` (its ``contours``) of ``box`` grew only sideways, to both sides, and only
    through rows under THIN_ROWS tall: the ruling that crosses a bold digit, whose ink reaches the
    re-trace's level near it. (A lost bar grows to one side, a lost stem grows the box's height.)"""
    x, y, w, h = box
    nx, ny, nw, nh = new
    reach = RULING_REACH  # (the strokes re-trace a little fatter than the box)
    if nx >= x - reach or nx + nw <= x + w + reach or ny < y - reach or ny + nh > y + h + reach:
        return False
    left, right = _grown_sides(new, contours, box)
    return not cv2.countNonZero(left) and not cv2.countNonZero(right)


def _grown_sides(new, contours, box):
    """(left, right): the strokes of the re-trace ``new`` (its ``contours``) beyond RULING_REACH of
    ``box``'s sides, less their rows under THIN_ROWS tall (a ruling's); empty arrays where it did not
    grow that far."""
    x, w, nx = box[0], box[2], new[0]
    region = _opened(_filled(contours, new), (THIN_ROWS, 1))
    return region[:, : max(0, x - nx - RULING_REACH)], region[:, max(0, x + w - nx + RULING_REACH) :]


def _grown_sideways(new, contours, box, found):
    """The re-trace ``new`` (its ``contours``) of ``box`` is wider than a digit (SPLIT_WIDTH x its height)
    and than ``box``: grown into its neighbour, or along a ruling. Up to MERGED_MAX_WIDTH_OVER_HEIGHT it
    may be a wide digit whose faint strokes the box missed (a 2 or a 3 on a notebook's line): when it
    grew at most WIDE_DIGIT_GROWTH x taller (not into a ring around it), reaches no other candidate, and
    on each side it grew, it found strokes at least THIN_ROWS tall."""
    _, _, w, h = box
    _, _, nw, nh = new
    if nw <= SPLIT_WIDTH * nh or nw <= w:
        return False
    if nw > MERGED_MAX_WIDTH_OVER_HEIGHT * nh or nh > WIDE_DIGIT_GROWTH * h or any(
            _overlap(new, other) > 0 for other, _contours, _pixels in found if other != box):
        return True
    return any(side.shape[1] and not cv2.countNonZero(side) for side in _grown_sides(new, contours, box))


def _grown_into(new, box, found):
    """The re-trace ``new`` of ``box`` took in part of another candidate: at least NEIGHBOUR_SHARE of its
    box more than ``box`` did, but not most of it (a piece of the same digit, dropped as a duplicate)."""
    if _overlap(new, box) == new[2] * new[3]:
        return False  # (most re-traces: no bigger than the box)
    for other, _contours, _pixels in found:
        area = other[2] * other[3]
        if other == box or area == 0:
            continue
        covered = _overlap(new, other)
        if covered < 0.5 * area and covered - _overlap(box, other) >= NEIGHBOUR_SHARE * area:
            return True
    return False


def _peak(work, box):
    """The darkest ink (0-255) in ``box`` at the working size."""
    x, y, w, h = box
    return cv2.minMaxLoc(work.ink[y : y + h, x : x + w])[1]


def _stands_out(work, mask, box):
    """A faint candidate's darkest ink is at least FAINT_CONTRAST x the ink around its strokes in its box
    (a shadow or grid lines raise that), and its strokes fill at most FAINT_FILL of the box (a patch)."""
    x, y, w, h = box
    inked = mask[y : y + h, x : x + w]
    if cv2.countNonZero(inked) > FAINT_FILL * w * h:
        return False
    ink = work.ink[y : y + h, x : x + w]
    background = ink[_with_rims(inked) == 0]
    if background.size == 0:
        return False
    return float(ink.max()) >= FAINT_CONTRAST * (float(np.percentile(background, 90)) + 1.0)


def _faint_candidates(work, found, min_h):
    """Digits whose every stroke is fainter than the frame-wide threshold: [(box, contours, ink pixels)].

    The threshold is 45 % of the frame's strong ink, so a pencil digit beside marker ones, a fine pen
    beside bold ones or a digit in a shadow beside well-lit ones leave no piece above it (and no piece
    for the re-trace to start from). Away from the candidates ``found``, the ink is thresholded again
    at the frame's floor, rulings removed. A candidate there needs darkest ink at FAINT_PEAK x the
    floor (so the pass runs only where the threshold is above that) and above the sensor noise; it
    must re-trace as a digit, keep FAINT_APART from the others and stand out from the ink around
    it (``_stands_out``). Two-stroke 4s are not joined among them (the "L" test reads the frame-wide
    mask).
    """
    level = work.floor
    if INK_LOW * work.strong < FAINT_PEAK * level:
        return []  # whatever is fainter than the threshold is too faint for a digit here too
    _, low = cv2.threshold(work.ink, level, 255, cv2.THRESH_BINARY)
    for (x, y, w, h), _contours, _pixels in found:
        pad = int(FAINT_PAD * h) + 2
        low[max(0, y - pad) : y + h + pad, max(0, x - pad) : x + w + pad] = 0
    if cv2.countNonZero(low) < 2 * min_h:
        return []
    work_h, work_w = low.shape
    mask = _lines_removed_unless_noise(low, work_w, work_h)
    if mask is None:
        return []
    mask = _closed(mask, (2, 2))
    if not cv2.countNonZero(cv2.erode(mask, _kernel((FAINT_GATE, 1)))):
        return []  # (on most ruled pages: the remnants of the rulings, no digit)
    faint = work._replace(mask=mask, strong_level=FAINT_PEAK * level)
    new = _candidates(faint, min_h, max_pieces=FAINT_PIECES)[0]
    if not new:
        return []
    noise = PEAK_OVER_NOISE * _noise_floor(work.raw_ink)  # (measured only here: most frames have no candidate)
    new = _retrace(faint, [item for item in new if _peak(work, item[0]) >= noise], sure_h=float("inf"))
    return [item for item in new
            if all(_gap(item[0], other[0]) >= FAINT_APART * item[0][3] for other in found)
            and _stands_out(work, faint.mask, item[0])]


def _two_stroke_four(left, stem):
    """Boxes ``left`` and ``stem`` (a thin candidate) are a 4 written in two strokes whose bar stops
    short of the stem: an "L" (its top and its bar) left of a taller stem that starts about as high;
    the bar ends (the L's bottom) in the stem's middle."""
    lx, ly, lw, lh = left
    sx, sy, sw, sh = stem
    if lx >= sx or sh < FOUR_STEM * lh:
        return False  # not a taller stem to its right
    gap = sx - (lx + lw)
    bar = ly + lh  # the L's bottom: where its bar runs towards the stem
    return (-2 <= gap <= FOUR_GAP * sh and abs(ly - sy) <= FOUR_TOPS * sh
            and sy + 0.3 * sh <= bar <= sy + 0.8 * sh)


def _open_top_right(mask, box):
    """The box's top-right quarter is (nearly) empty: an "L", not a 9's loop or a 7's bar."""
    x, y, w, h = box
    quarter = mask[y : y + h // 2, x + w // 2 : x + w]
    return quarter.size > 0 and cv2.countNonZero(quarter) <= FOUR_OPEN * quarter.size


def _join_two_stroke_fours(mask, found):
    """Join candidates that are the two strokes of one 4 (``_two_stroke_four``): at the working
    threshold a 4's bar that stops short of its stem leaves an "L" and a "1" side by side. Only thin
    candidates (at most THIN_STROKE x as wide as tall) are stems; most frames have none."""
    stems = [j for j, item in enumerate(found) if item[0][2] <= THIN_STROKE * item[0][3]]
    for j in stems:
        stem = found[j][0]
        for i, (left, contours, ink_pixels) in enumerate(found):
            if i == j or not _two_stroke_four(left, stem):
                continue
            merged = _merge_pair(left, stem)
            if merged[2] <= MERGED_MAX_WIDTH_OVER_HEIGHT * merged[3] and _open_top_right(mask, left):
                joined = (merged, list(contours) + list(found[j][1]), ink_pixels + found[j][2])
                rest = [item for k, item in enumerate(found) if k not in (i, j)]
                return _join_two_stroke_fours(mask, rest + [joined])
    return found


def _split_stacked(mask, found, min_h):
    """Split candidates that are digits written on neighbouring ruled lines, one above the other (the
    lower one's top touching the upper one's foot, or merged with it as a broken stroke), and the
    rows of digits such a merge has swallowed beside them.

    Only on frames with at least 3 candidates, for a candidate at least STACKED_HEIGHT x their
    median height: it is cut at its emptiest row in its middle 40 % when that row holds at most
    STACKED_TOUCH ink pixels, each part again while it is that tall, and each row into digits
    written close together (``split_touching``), down to parts STACKED_PART x the median tall. Strokes
    that run out of the candidate's box (a neighbour's sliver in its corner) are left out of the cut.
    The split stands when every part is a whole digit (``_whole_digit``): a big digit whose stroke
    broke (an 8's loops, a 7's bar and stem, a light 1) has a part that is too small, too wide or a
    thin stroke. When the candidate spans two lines (STACKED_ONE_SPAN x the median), a part may also
    be a 1 (``_thin_one``) beside at least one whole digit. Measured on 10,755 frames of other kinds:
    no box changes but two big fine-pen digits (now found whole); the sliver, gap and 1 rules
    (docs/benchmarks.md, "Stacked rows, second pass") change no score outside the notebook pages."""
    if len(found) < 3:
        return found
    heights = sorted(item[0][3] for item in found)
    typical = (heights[(len(heights) - 1) // 2] + heights[len(heights) // 2]) / 2.0  # the median
    part_h = max(min_h, STACKED_PART * typical)
    out = []
    for item in found:
        box = item[0]
        if box[3] < STACKED_HEIGHT * typical:
            out.append(item)
            continue
        parts = _stacked_parts(_without_neighbours(mask, box), box, STACKED_HEIGHT * typical, part_h)
        one_h = part_h if box[3] >= STACKED_ONE_SPAN * typical else float("inf")
        whole = [part for part in parts if _whole_digit(part, part_h)]
        if len(parts) < 2 or not whole or not all(p in whole or _thin_one(p, one_h) for p in parts):
            out.append(item)
        else:
            out.extend((part, item[1], item[2]) for part in parts)
    return out


def _without_neighbours(mask, box):
    """``mask`` with the strokes that run out of ``box`` cleared inside it (a copy; ``mask`` itself when
    none do): the slivers of neighbouring digits that a merged box's corners take in (a 7's bar)."""
    x, y, w, h = box
    height, width = mask.shape
    x0, y0, x1, y1 = max(0, x - 1), max(0, y - 1), min(width, x + w + 1), min(height, y + h + 1)
    _, labels = cv2.connectedComponents(mask[y0:y1, x0:x1], connectivity=8)
    ring = labels.copy()
    ring[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = 0
    leaving = np.unique(ring[ring > 0])
    if leaving.size == 0:
        return mask
    out = mask.copy()
    inner = out[y : y + h, x : x + w]
    inner[np.isin(labels[y - y0 : y - y0 + h, x - x0 : x - x0 + w], leaving)] = 0
    return out


def _whole_digit(box, part_h):
    """A part of a split that is a digit of its own: at least ``part_h`` tall, STACKED_SHAPE x as tall
    as wide, and not a thin stroke (THIN_STROKE)."""
    return box[3] >= part_h and box[3] >= STACKED_SHAPE * box[2] and box[2] > THIN_STROKE * box[3]


def _thin_one(box, one_h):
    """A part of a split that is a 1: a thin stroke (THIN_STROKE) at least ``one_h`` tall."""
    return box[3] >= one_h and MIN_WIDTH_PX <= box[2] <= THIN_STROKE * box[3]


def _stacked_parts(mask, box, tall, part_h):
    """``box`` cut at its emptiest middle row into rows (each part cut again while ``tall`` or taller:
    parts only shrink), each row split into the digits written close together (``split_touching``),
    down to ``part_h`` tall (a small digit beside a big one on its line)."""
    x, y, w, h = box
    rows = _ink_per_line(mask, box, 1)
    lo, hi = int(0.3 * h), int(np.ceil(0.7 * h))
    cut = lo + int(np.argmin(rows[lo:hi])) if hi > lo else lo
    if hi <= lo or rows[cut] > STACKED_TOUCH:
        return split_touching(mask, box, min_part=min(SPLIT_MIN_HEIGHT * h, part_h))
    parts = []
    for py, ph in ((y, cut), (y + cut + 1, h - cut - 1)):
        part = _ink_box(mask, (x, py, w, ph))
        if part is None:
            return [box]
        if part[3] >= tall:
            parts.extend(_stacked_parts(mask, part, tall, part_h))
        else:
            parts.extend(split_touching(mask, part, min_part=min(SPLIT_MIN_HEIGHT * part[3], part_h)))
    return parts


def _ink_box(mask, box):
    """The bounding box of the mask's ink inside ``box`` (None when there is none)."""
    x, y, w, h = box
    ix, iy, iw, ih = cv2.boundingRect(mask[y : y + h, x : x + w])  # (of the non-zero pixels; 0s when none)
    return (x + ix, y + iy, iw, ih) if iw else None


def _overlap(a, b):
    """Intersection area of two (x, y, w, h) boxes."""
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, ix) * max(0, iy)


def _drop_duplicates(found):
    """Keep the bigger of two candidates whose boxes mostly cover each other."""
    kept = []
    for item in sorted(found, key=lambda f: -f[0][2] * f[0][3]):
        box = item[0]
        area = box[2] * box[3]
        if all(_overlap(box, other[0]) < 0.5 * area for other in kept):
            kept.append(item)
    return kept


def digits_from_frame(frame, pre=None, roi=None, max_digits=32, layout=None, polarity="auto", debug=False):
    """Find handwritten digits in a camera frame; return a DigitBatch (possibly empty).

    frame: BGR uint8 [H,W,3], gray [H,W] or BGRA [H,W,4], any size.
    pre: the manifest's "preprocess" dict. roi: optional (x, y, w, h) to search in.
    layout: "NHWC" (default, or pre["layout"]) or "NCHW" for the batch.
    polarity: "auto", "dark" (dark ink on light paper) or "light" (light ink on a dark board).
    Boxes are (x, y, w, h) in the frame's pixel coordinates, in reading order.
    """
    layout = layout or (pre or {}).get("layout") or "NHWC"
    image = _as_uint8_image(frame)
    if image is None:
        return _empty_batch(pre, layout)
    region = _normalise_roi(roi, image.shape)
    if region is None:
        return _empty_batch(pre, layout)
    rx, ry, rw, rh = region
    part = image[ry : ry + rh, rx : rx + rw]
    look = dict(pre=pre, layout=layout, polarity=polarity, debug=debug, max_digits=max_digits)
    if max(rw, rh) < CLOSE_UP_SIDE:  # a thumbnail, a crop or an MNIST image: too small for the normal look
        return _close_up(part, (rx, ry), **look)[0]
    min_h = max(MIN_DIGIT_PX, MIN_DIGIT_FRACTION * min(image.shape[:2]))
    found, work, tallest = _digits_in(part, (rx, ry), min_h, **look)
    return _with_close_up(found, work, tallest, part, region, look)


def _with_close_up(found, work, tallest, part, region, look):
    """``found`` (the normal look's digits in ``part``, the frame's ``region``; ``work``: its working
    pictures; ``tallest``: its tallest piece of ink off the edge), or the close-up look's where
    ``part`` holds a digit filling much of it.

    The close-up look runs where a piece of ink (the rims of a marker's strokes, or a digit dropped as
    the outline of a dark object) or of dark paper (``_bold_strokes_in_paper``) is at least
    CLOSE_UP_MIN x the picture's shorter side tall, off its edge. Its digits are kept where they are
    bold: strokes at least WIDE_STROKE x the paper estimate's reach wide (it took their cores for
    paper: the normal look saw rims, counters and fragments, or a dark object) and at most BOLD_MAX x
    the digit's height (wider: a blob, a shadow). Where the normal look found nothing, its bold digits
    are the result (off the edge only, where the dark paper alone set it off). Otherwise they replace
    the normal look's digits when all of them are bold, off the edge, and hold every digit the normal
    look found (its pieces): a ring drawn around digits has a pen's thin stroke, and they stay."""
    tall = CLOSE_UP_MIN * min(region[2], region[3]) * work.scale_y
    tall_piece = tallest >= tall
    if not (tall_piece or _bold_strokes_in_paper(work, tall)):
        return found
    close_up, widths = _close_up(part, region[:2], **look)
    reach = PAPER_SHRINK * _paper_kernel(work.mask.shape[1], work.mask.shape[0]) / work.scale_y
    margin = _border(work) / work.scale_x
    bold = [index for index, (box, width) in enumerate(zip(close_up.boxes, widths))  # noqa: B905 (Python 3.6)
            if WIDE_STROKE * reach <= width <= BOLD_MAX * box[3]]
    if not found.boxes:
        if not tall_piece:  # (the dark paper counts pieces off the edge only)
            bold = [index for index in bold if _off_edge(close_up.boxes[index], region, margin)]
        return _kept(close_up, bold)
    if len(bold) == len(close_up.boxes) and _pieces_of(found.boxes, close_up.boxes, region, margin):
        return close_up
    return found


def _off_edge(box, region, margin):
    """``box`` (frame pixels) lies at least ``margin`` pixels inside ``region`` (x, y, w, h)."""
    return not _at_border((box[0] - region[0], box[1] - region[1], box[2], box[3]), region[2], region[3], margin)


def _pieces_of(boxes, digits, region, margin):
    """Every box of ``boxes`` has its centre in one of ``digits``, and those lie at least ``margin``
    pixels off the edge of ``region``: the normal look found only pieces of the close-up look's
    digits (a shadow or a desk that the close-up's padding cut off from the edge is no digit)."""
    if not all(_off_edge(box, region, margin) for box in digits):
        return False
    for x, y, w, h in boxes:
        cx, cy = x + w / 2.0, y + h / 2.0
        if not any(dx <= cx < dx + dw and dy <= cy < dy + dh for dx, dy, dw, dh in digits):
            return False
    return True


def _kept(found, keep):
    """``found`` (a DigitBatch) with only the digits at the indices ``keep``, in that order."""
    if len(keep) == len(found.boxes):
        return found
    numbers = found.numbers
    if numbers is not None:
        new_index = {old: new for new, old in enumerate(keep)}
        wide = [(new_index[i], box, contours) for i, box, contours in numbers.wide if i in new_index]
        numbers = Numbers(numbers.work, wide, len(keep), numbers.pre, numbers.layout, numbers.origin) if wide else None
    crops = None if found.crops is None else [found.crops[i] for i in keep]
    return found._replace(boxes=[found.boxes[i] for i in keep], batch=found.batch[keep], crops=crops, numbers=numbers)


def _bold_strokes_in_paper(work, min_h):
    """The paper estimate (on a 1/PAPER_SHRINK copy) is darker than DARK_REGION x the page's level
    (its 90th percentile) over a piece at least ``min_h`` tall (working size) off the frame's edge:
    the cores of a marker digit's strokes, too wide for the closing to remove, which left the mask
    only their rims (a shadow darkens paper to 55-80 %; a desk beside the page touches the edge)."""
    paper = _paper_small(work)
    dark = cv2.threshold(paper, DARK_REGION * _quantile(paper, 0.9), 255, cv2.THRESH_BINARY_INV)[1]
    small_h, small_w = dark.shape
    contours = cv2.findContours(dark, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[-2]
    for contour in contours:
        box = cv2.boundingRect(contour)
        if box[3] * PAPER_SHRINK >= min_h and _inside(box, (0, 0, small_w, small_h)):
            return True
    return False


def _close_up(part, origin, **look):
    """``_digits_in`` of ``part`` as a close-up: one digit or a few filling much of it (a photo of one
    digit, a crop, a 28x28 MNIST image). Such a digit's strokes are wider than the paper estimate
    removes (about 9 % of the frame: they are taken for a dark object), it may touch the frame's edge
    (taken for a digit cut by the frame), and a tiny frame has no room for the normal look.

    ``part`` is padded by CLOSE_UP_PAD x its longer side with its border's median colour, looked
    at with the longer side at CLOSE_UP_SIDE pixels (enlarged if smaller), for digits at least
    CLOSE_UP_MIN x its shorter side tall; polarity "auto" is judged from its edges
    (``_close_up_polarity``). Boxes are clipped to ``part``."""
    h, w = part.shape[:2]
    pad = max(2, int(round(CLOSE_UP_PAD * max(h, w))))
    colour = np.median(np.concatenate([part[0], part[-1], part[:, 0], part[:, -1]], axis=0), axis=0)
    value = [float(v) for v in np.atleast_1d(colour)]
    if look["polarity"] == "auto":  # (the hats that judge it see a close-up's wide strokes as no thin feature)
        look = dict(look, polarity=_close_up_polarity(part, min(value)))
    padded = cv2.copyMakeBorder(part, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=value)
    min_h = max(MIN_DIGIT_PX, CLOSE_UP_MIN * min(h, w))
    found, work, _ = _digits_in(padded, (origin[0] - pad, origin[1] - pad), min_h, side=CLOSE_UP_SIDE, **look)
    widths = [_stroke_width_at(work, box, origin[0] - pad, origin[1] - pad) for box in found.boxes]
    x0, y0 = origin
    boxes = [_clipped(box, x0, y0, x0 + w, y0 + h) for box in found.boxes]
    return found._replace(boxes=boxes), widths


def _stroke_width_at(work, box, rx, ry):
    """The mean stroke width (``stroke_width``, frame pixels) of ``work``'s ink mask under ``box``: frame
    coordinates of a picture whose corner is at (``rx``, ``ry``)."""
    x, y, w, h = box
    x0, y0 = int((x - rx) * work.scale_x), int((y - ry) * work.scale_y)
    x1, y1 = int(np.ceil((x + w - rx) * work.scale_x)), int(np.ceil((y + h - ry) * work.scale_y))
    return stroke_width(work.mask[y0:y1, x0:x1]) / work.scale_y


def _close_up_polarity(part, background):
    """"dark" (ink darker than the paper), "light" or "auto" for a close-up whose edges, mostly
    background, have the median colour ``background`` (its lowest channel, as ``darkness_source`` reads
    it): light ink where that lies in the darkest quarter of its range, dark ink in the brightest
    quarter, undecided between (noise)."""
    low, high = cv2.minMaxLoc(darkness_source(part))[:2]
    if background <= low + 0.25 * (high - low):
        return "light"
    return "dark" if background >= low + 0.75 * (high - low) else "auto"


def _clipped(box, x0, y0, x1, y1):
    """(x, y, w, h) within x0 <= x < x1, y0 <= y < y1 (at least 1 x 1)."""
    x, y, bw, bh = box
    left, top = min(max(x, x0), x1 - 1), min(max(y, y0), y1 - 1)
    right, bottom = max(min(x + bw, x1), left + 1), max(min(y + bh, y1), top + 1)
    return (left, top, right - left, bottom - top)


def _digits_in(part, origin, min_h_full, pre, layout, polarity, debug, max_digits, side=None):
    """``digits_from_frame``'s look at ``part`` (the frame, or its ROI, whose corner is at ``origin`` in
    the frame) for digits at least ``min_h_full`` of its pixels tall, at a working size whose longer
    side is ``side`` (default: ``_work_from_frame``'s) -> (DigitBatch, the working pictures, the height
    of the tallest piece of ink off its edge at the working size)."""
    rx, ry = origin
    work, debug_images = _work_from_frame(part, polarity, side)
    min_h = min_h_full * work.scale_y
    found, tallest = _candidates(work, min_h, small_h=SMALL_DIGIT * min_h)
    found = _split_stacked(work.mask, _retrace(work, found, sure_h=min_h), min_h)
    found = _join_two_stroke_fours(work.mask, found) + _faint_candidates(work, found, min_h)
    found = _off_the_page(work, found)
    if len(found) > max_digits:
        found = sorted(found, key=lambda f: -f[2])[:max_digits]
    found = reading_order(found)
    enough = _detail_pixels(pre)
    boxes, crops = [], []
    for box, contours, _ in found:
        crops.append(normalized_uint8(_crop_for_digit(work, contours, box, enough), pre))
        boxes.append(_in_frame(work, box, rx, ry))
    wide = [(index, box, contours) for index, (box, contours, _) in enumerate(found) if _may_be_number(work, box)]
    return DigitBatch(boxes=boxes, batch=batch_from_crops(crops, pre, layout), crops=crops,
                      debug=debug_images if debug else None,
                      numbers=Numbers(work, wide, len(boxes), pre, layout, (rx, ry)) if wide else None), work, tallest


def _detail_pixels(pre):
    """A digit at least this tall at the working size is cropped from the working ink map
    (``_crop_for_digit``'s ``enough_pixels``): DETAIL_FACTOR model boxes."""
    return DETAIL_FACTOR * int(_pre_value(pre, "box"))


def _in_frame(work, box, rx=0, ry=0):
    """A working-size box in the frame's (or, offset by ``rx``, ``ry``, the ROI's frame's) pixels."""
    x, y, w, h = box
    fx, fy = int(round(x / work.scale_x)), int(round(y / work.scale_y))
    fw, fh = int(round(w / work.scale_x)), int(round(h / work.scale_y))
    return (fx + rx, fy + ry, max(1, fw), max(1, fh))


def _may_be_number(work, box):
    """Whether a box (working size) may be digits written close together: at least NUMBER_WIDTH x as
    wide as tall, or at least APART_WIDTH x with its strong ink in two tall pieces (``_strong_in_two``,
    about 8 us a box; 22 us a ``synthetic://`` frame, where no single digit passes it)."""
    w, h = box[2], box[3]
    return w >= NUMBER_WIDTH * h or (w >= APART_WIDTH * h and _strong_in_two(work, box))


def _strong_in_two(work, box):
    """Whether a box (working size) holds at least two pieces of ink APART_TALL x its height tall at
    ``_apart_level`` in the working ink map: digits that ``_apart_pieces`` may part."""
    x, y, w, h = box
    strong = cv2.threshold(work.ink[y : y + h, x : x + w], _apart_level(work), 255, cv2.THRESH_BINARY)[1]
    pieces = cv2.findContours(strong, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[-2]
    return len(pieces) >= 2 and sum(cv2.boundingRect(piece)[3] >= APART_TALL * h for piece in pieces) >= 2


def _apart_level(work):
    """The ink level at which a number's digits may part (``_strong_in_two``, ``_apart_pieces``)."""
    return max(work.threshold, APART_LEVEL * work.strong)


class Numbers(object):
    """The boxes of one frame that may be numbers written close together (digits touching, or apart
    in the frame but joined at the working size), kept with the frame's working images so that
    ``cut`` makes their pieces only when they are needed (or ``prepare`` makes them all ahead,
    where that is cheaper: see its note)."""

    __slots__ = ("work", "wide", "rows", "pre", "layout", "origin", "_prepared")

    def __init__(self, work, wide, rows, pre, layout, origin):
        """``wide``: [(index in the frame's boxes, working-size box, contours)]; ``rows``: how many
        boxes the frame has (the pieces' probability rows follow theirs); ``origin``: the ROI's
        corner in the frame."""
        self.work, self.wide, self.rows = work, wide, rows
        self.pre, self.layout, self.origin = pre, layout, origin
        self._prepared = None

    @property
    def indices(self):
        """The indices of the boxes that may be numbers."""
        return [index for index, _, _ in self.wide]

    def prepare(self, most=NUMBER_PIECES):
        """Make the pieces of every box now (at most ``most`` per box at its columns, and its
        ``_apart_pieces``); ``cut`` then picks them.

        Worth it in a detection thread, right after ``digits_from_frame``: the frame's images and
        this code are still in the CPU's caches there, and the model's thread, which would
        otherwise make them after the first batch, is left free. Measured on the 2-core VM (300
        ``synthetic://`` frames): a frame's pieces cost 0.29 ms made at once against 0.7-0.9 ms
        made later in the model's thread; made ahead for every box, 0.2 ms a frame on average."""
        self._prepared = (int(most), {index: self._columns(box, contours, most) + (self._apart(box, contours),)
                                      for index, box, contours in self.wide})

    def cut(self, indices, max_digits):
        """(``Split`` list, their pieces' batch) for the boxes at ``indices``, at most ``max_digits``
        pieces in all (the batch stays within an engine's batch size)."""
        chosen = set(indices)
        splits, crops = [], []
        for index, box, contours in self.wide:
            if index not in chosen or len(crops) >= max_digits:
                continue
            left = max_digits - len(crops)
            gaps, made, parted = self._made(index, box, contours, left)
            pieces, apart = {}, []
            for key, piece_box, crop in made:
                crops.append(crop)
                pieces[key] = (piece_box, self.rows + len(crops) - 1)
            for piece_box, crop in parted:
                crops.append(crop)
                apart.append((piece_box, self.rows + len(crops) - 1))
            if pieces or apart:
                splits.append(Split(index, gaps, pieces, apart))
        return splits, batch_from_crops(crops, self.pre, self.layout)

    def _made(self, index, box, contours, most):
        """(gaps, its ``_columns`` pieces, its ``_apart_pieces``) of one box, at most ``most`` pieces in
        all: the columns' pieces prepared unless ``prepare`` stopped short of ``most``; the apart ones
        (prepared or made now) only where all of them fit."""
        prepared = None if self._prepared is None else self._prepared[1].get(index)
        if prepared is None:
            gaps, made, apart = self._columns(box, contours, most) + (self._apart(box, contours),)
        else:
            gaps, made, apart = prepared
            if most > self._prepared[0] and len(made) >= self._prepared[0]:  # (fewer: that was all of them)
                gaps, made = self._columns(box, contours, most)
        made = made[:most]
        return gaps, made, apart if len(made) + len(apart) <= most else []

    def _apart(self, box, contours):
        """``_apart_pieces`` of one box."""
        return _apart_pieces(self.work, box, contours, self.pre, self.origin)

    def _columns(self, box, contours, most):
        """(gaps, [((i, j), box in the frame, normalised crop)]) for a number's ``box`` (working size):
        at most ``most`` of the pieces between its cut points i < j at least NUMBER_PIECE x its height
        tall, never the whole box, each cut to the piece's columns; none for a box narrower than
        NUMBER_WIDTH x its height."""
        work = self.work
        enough = _detail_pixels(self.pre)
        x, y, w, h = box
        cuts = [0] + (_number_cuts(work.mask, box) if w >= NUMBER_WIDTH * h else []) + [w]
        gaps, made = len(cuts) - 1, []
        for i in range(gaps):
            for j in range(i + 1, gaps + 1):
                if j - i == gaps or len(made) >= most:
                    continue
                columns = (x + cuts[i], x + cuts[j])
                piece = _ink_box(work.mask, (columns[0], y, columns[1] - columns[0], h))
                if piece is not None and piece[3] >= NUMBER_PIECE * h:
                    crop = normalized_uint8(_crop_for_digit(work, contours, piece, enough, columns), self.pre)
                    made.append(((i, j), _in_frame(work, piece, *self.origin), crop))
        return gaps, made


def _apart_pieces(work, box, contours, pre, origin):
    """[(box in the frame, normalised crop)] left to right: the digits of a number's
    ``box`` (working size; ``contours``: its outlines) whose strokes lie apart in the frame, though
    the working size joined them. Its ink at ``_apart_level`` in the frame's pixels, within its
    outlines, in pieces: those at least NUMBER_PIECE x its height tall are digits, each with the
    smaller pieces nearest it (a 5's bar, a stroke's broken end). [] where fewer than two are that tall.
    Each digit is cropped from the frame's ink under its own strokes, so a neighbour that reaches
    into its columns is left out (what a cut at a column cannot do)."""
    x, y, w, h = box
    ink = _full_resolution_ink(work, x, y, x + w, y + h)
    size = (ink.shape[1], ink.shape[0])
    own = cv2.dilate(cv2.resize(_filled(contours, box), size, interpolation=cv2.INTER_NEAREST), _kernel((3, 3)))
    strong = cv2.bitwise_and(cv2.threshold(ink, _apart_level(work), 255, cv2.THRESH_BINARY)[1], own)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(strong)
    centres = stats[:count, cv2.CC_STAT_LEFT] + stats[:count, cv2.CC_STAT_WIDTH] / 2.0
    tall = [k for k in range(1, count) if stats[k, cv2.CC_STAT_HEIGHT] >= NUMBER_PIECE * size[1]]
    if len(tall) < 2:
        return []
    tall.sort(key=lambda k: centres[k])
    owner = np.zeros(count, np.int32)  # (0: the paper)
    owner[1:] = 1 + np.argmin(np.abs(centres[1:, None] - centres[tall][None, :]), axis=1)
    groups = owner[labels]
    fx0, fy0 = _full_corner(work, x, y)
    made = []
    for n in range(1, len(tall) + 1):
        mine = cv2.compare(groups, n, cv2.CMP_EQ)
        px, py, pw, ph = cv2.boundingRect(mine)
        region = cv2.dilate(mine, _kernel((3, 3)))
        crop = _stretched(cv2.bitwise_and(ink, region), region)[py : py + ph, px : px + pw]
        made.append(((fx0 + px + origin[0], fy0 + py + origin[1], pw, ph), normalized_uint8(crop, pre)))
    return made


def read_numbers(boxes, probs, numbers, infer, max_digits=NUMBER_PIECES):
    """(boxes, probs) with the boxes of ``numbers`` that the model reads below NUMBER_DOUBT cut into
    pieces, the pieces read by ``infer(batch) -> probabilities`` and kept where ``resolve_splits``
    finds them better. ``probs``: the model's probabilities for ``boxes``; ``numbers``: the
    ``DigitBatch``'s (None: nothing to cut)."""
    probs = np.asarray(probs)
    doubtful = [] if numbers is None else [index for index in numbers.indices if probs[index].max() < NUMBER_DOUBT]
    splits, batch = numbers.cut(doubtful, max_digits) if doubtful else ([], None)
    if not splits:  # (most frames: no second batch)
        return list(boxes), probs[: len(boxes)]
    more = np.asarray(infer(batch), probs.dtype) if len(batch) else probs[:0]
    return resolve_splits(boxes, np.concatenate([probs, more]), splits)


def _number_cuts(mask, box):
    """Up to NUMBER_CUTS columns of ``box`` (offsets from its left; one per NUMBER_DIGIT_WIDTH x its
    height of width) where a number's digits may meet: the local minima of its ink per column
    (smoothed over 3), emptiest first, apart."""
    _, _, w, h = box
    smooth = np.convolve(_ink_per_line(mask, box, 0).astype(np.float32), np.ones(3, np.float32) / 3, mode="same")
    apart, side = NUMBER_CUT_APART[0] * h, max(1, int(NUMBER_CUT_APART[1] * h))
    inner = np.arange(side, w - side)
    if inner.size == 0:
        return []
    minima = inner[(smooth[inner] <= smooth[inner - 1]) & (smooth[inner] <= smooth[inner + 1])]  # (inner + 1 < w)
    most = min(NUMBER_CUTS, max(1, int(w / (NUMBER_DIGIT_WIDTH * h))))
    kept = []
    for cut in minima[np.argsort(smooth[minima], kind="stable")]:
        if all(abs(int(cut) - k) >= apart for k in kept):
            kept.append(int(cut))
            if len(kept) == most:
                break
    return sorted(kept)


def resolve_splits(boxes, probs, splits):
    """(boxes, probs) with each ``Split`` box replaced by its pieces where they read better.

    ``probs``: the model's probabilities, the boxes' rows first, then the pieces'. A split box's
    readings are its digits apart in the frame (``Split.apart``) and every way to cut it at its cut
    points; each scores its pieces' mean log confidence (the apart pieces APART_PREFERENCE more:
    they follow the strokes), so more pieces do not add up more doubt. The best (of equal scores,
    the fewest pieces) is taken when it beats the whole box's log confidence, its geometric mean
    confidence is at least NUMBER_SURE (NUMBER_SURE_NARROW for a box less than NUMBER_WIDE x as wide
    as tall), and its pieces' feet are level (``_level``). Returns lists of boxes and an array of
    their probabilities, in order.
    """
    probs = np.asarray(probs)
    if not splits:
        return list(boxes), probs[: len(boxes)]
    log_sure = np.log(np.maximum(probs.max(axis=1), 1e-12))
    chosen = {}
    for split in splits:
        best, best_score = None, log_sure[split.whole]
        _, _, w, h = boxes[split.whole]
        log_bar = np.log(NUMBER_SURE if w >= NUMBER_WIDE * h else NUMBER_SURE_NARROW)
        readings = [(split.apart, APART_PREFERENCE)] if split.apart else []
        readings += [([split.pieces[key] for key in path], 0.0) for path in _cut_paths(split.pieces, 0, split.cuts)]
        for pieces, preference in sorted(readings, key=lambda reading: len(reading[0])):  # (a tie: fewer pieces)
            score = sum(log_sure[row] for _, row in pieces) / len(pieces) + preference
            if score > best_score and score >= log_bar and _level(pieces, h):
                best, best_score = pieces, score
        if best is not None:
            chosen[split.whole] = best
    out_boxes, rows = [], []
    for index, box in enumerate(boxes):
        for piece_box, row in chosen.get(index, [(box, index)]):
            out_boxes.append(piece_box)
            rows.append(row)
    return out_boxes, probs[np.asarray(rows, np.int64)] if rows else probs[:0]


def _level(pieces, height):
    """Whether the feet of ``pieces`` ([(box, row)]) are within NUMBER_LEVEL x ``height`` of each other."""
    feet = [box[1] + box[3] for box, _ in pieces]
    return max(feet) - min(feet) <= NUMBER_LEVEL * height


def _cut_paths(pieces, start, end):
    """Every sequence of ``pieces`` keys (i, j) leading from cut ``start`` to ``end`` (the whole box is
    never a piece, so from 0 each has at least two)."""
    for (i, j) in sorted(pieces):
        if i != start:
            continue
        if j == end:
            yield [(i, j)]
            continue
        for rest in _cut_paths(pieces, j, end):
            yield [(i, j)] + rest


def batch_from_crops(crops, pre=None, layout="NHWC"):
    """Normalised uint8 crops -> float32 batch scaled per ``pre`` in the model's layout."""
    size = int(_pre_value(pre, "size"))
    scale = np.float32(_pre_value(pre, "scale"))
    if not crops:
        shape = (0, 1, size, size) if layout == "NCHW" else (0, size, size, 1)
        return np.zeros(shape, np.float32)
    stack = np.stack(crops).astype(np.float32) * scale
    if _pre_value(pre, "foreground") == "black-on-white":
        stack = np.float32(255.0) * scale - stack
    if layout == "NCHW":
        return stack[:, None, :, :]
    return stack[:, :, :, None]
