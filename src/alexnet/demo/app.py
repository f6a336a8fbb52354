"""The demo page, in Gradio: a photo in; its top-5 as bars, where the net looked (Grad-CAM and
occlusion), all its softmax outputs as a 25 x 40 grid, conv1's filters and a layer's feature maps.

It binds to 127.0.0.1 unless told otherwise and works with no internet: Gradio's analytics are
off, its default theme's fonts are the ones bundled with it, and nothing else is fetched (the
browser test checks every request the page makes). An upload that is not a readable image, or
over MAX_UPLOAD, gets a message in the page and the server keeps serving.
Follows Gradio's Blocks guide (gradio.app/guides/blocks-and-event-listeners), like torchvision's
AlexNet hub page's Space: an image in, a gr.Label of the top classes out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from alexnet.demo.panels import Net, panels
from alexnet.errors import UsageError

MAX_UPLOAD = "20mb"  # a photo is a few MB; the package's reader would take up to limits.IMAGE_FILE_BYTES
TITLE = "AlexNet: what the net says, and where it looked"
BUTTONS = ["download", "fullscreen"]  # not "share": it posts to Hugging Face Spaces, and the page is offline


def build(nets: list[Net], examples: list[str]) -> Any:
    """The page (a gr.Blocks), offering `nets` in a picker and `examples` as clickable photos."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no calls home
    import gradio as gr

    by_label = {net.label: net for net in nets}
    first = nets[0]

    def show(label: str, path: str | None, cam_layer: str, feature_layer: str) -> Iterator[tuple[Any, ...]]:
        yield blank()  # first: so no result (or error) stays beside another photo's, net's or layer's
        if path is None:  # the photo was cleared
            return
        net = by_label[label]
        try:
            shown = panels(net, path, cam_layer=cam_layer if cam_layer in net.cam_layers else None,
                           feature_layer=feature_layer if feature_layer in net.feature_layers else None)
        except UsageError as e:
            raise gr.Error(str(e), print_exception=False) from None
        yield (shown["top5"], gr.Image(shown["gradcam"], label=shown["gradcam_caption"]),
               gr.Image(shown["occlusion"], label=shown["occlusion_caption"]), shown["heatmap"], shown["filters"],
               shown["features"])

    def classify(label: str, path: str | None, cam_layer: str, feature_layer: str) -> Iterator[tuple[Any, ...]]:
        if path is None:
            raise gr.Error("upload a photo first (JPEG, PNG, WebP, ...), or click one of the examples",
                           print_exception=False)
        yield from show(label, path, cam_layer, feature_layer)

    def blank() -> tuple[Any, ...]:
        return None, gr.Image(None, label="Grad-CAM"), gr.Image(None, label="occlusion"), None, None, None

    def pick(label: str, cam_layer: str, feature_layer: str) -> tuple[Any, Any]:
        """The layer pickers of the net chosen, keeping each choice the new net also has (as `show` does)."""
        net = by_label[label]
        return (gr.Dropdown(choices=net.cam_layers, value=cam_layer if cam_layer in net.cam_layers
                            else _last_conv(net)),
                gr.Dropdown(choices=net.feature_layers, value=feature_layer if feature_layer in net.feature_layers
                            else net.first_activation))

    # uploads and drawn panels are Gradio's temporary files: removed after an hour, and at a restart
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(600, 3600)) as page:
        gr.Markdown(f"# {TITLE}\nUpload a photo (or click an example). The net sees its centre crop; "
                    "Grad-CAM and occlusion show which parts of that view the top class depends on.")
        with gr.Row():
            with gr.Column(scale=1):
                chosen = gr.Dropdown(choices=list(by_label), value=first.label, label="net")
                photo = undecoded(gr.Image(type="filepath", sources=["upload", "clipboard"], label="photo", height=320))
                cam = gr.Dropdown(choices=first.cam_layers, value=_last_conv(first), label="Grad-CAM layer")
                layer = gr.Dropdown(choices=first.feature_layers, value=first.first_activation,
                                    label="feature maps of")
                go = gr.Button("Classify", variant="primary")
                if examples:
                    gr.Examples(examples=examples, inputs=photo, label="examples")
            with gr.Column(scale=2):
                bars = gr.Label(num_top_classes=5, label="top-5")
                with gr.Row():
                    gradcam = gr.Image(label="Grad-CAM", type="numpy", height=300, buttons=BUTTONS)
                    occlusion = gr.Image(label="occlusion", type="numpy", height=300, buttons=BUTTONS)
        with gr.Tab("all softmax outputs"):
            heatmap = gr.Plot(label="softmax outputs", format="png")
        with gr.Tab("conv1's filters"):
            kernels = gr.Plot(label="conv1", format="png")
        with gr.Tab("feature maps"):
            features = gr.Plot(label="feature maps", format="png")
        outputs = [bars, gradcam, occlusion, heatmap, kernels, features]
        inputs = [chosen, photo, cam, layer]
        chosen.select(pick, [chosen, cam, layer], [cam, layer], queue=False)
        # One listener for every change (photo: an upload, a paste, an example; select: a pick, not a
        # dropdown opened and closed): a change made while a photo is computed runs after it with the
        # inputs as they are then, so the last change always wins.
        gr.on([photo.change, chosen.select, cam.select, layer.select], show, inputs, outputs,
              trigger_mode="always_last", concurrency_id="panels")
        go.click(classify, inputs, outputs, trigger_mode="always_last", concurrency_id="panels")
    return page


def undecoded(image: Any) -> Any:
    """A gr.Image that hands the uploaded file to the package's own reader (`read_photo`), which
    says in one line what is wrong with a file that is no readable image; gr.Image's own decoding
    fails first, with a message about its internals. Set on the instance: a subclass of a Gradio
    component makes Gradio write a .pyi file beside this module."""
    import gradio as gr

    decode = image.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is not None and payload.path:
            return payload.path
        try:  # a pasted picture arrives as a data: URL
            return decode(payload)
        except (OSError, ValueError) as e:
            raise gr.Error(f"the pasted picture is not an image this page can read: {e}",
                           print_exception=False) from None

    image.preprocess = preprocess
    return image


def _last_conv(net: Net) -> str:
    return [name for name in net.cam_layers if "." not in name][-1]


def serve(page: Any, host: str, port: int) -> None:
    """Serve the page until interrupted (Ctrl-C)."""
    page.queue(default_concurrency_limit=1)  # one photo at a time: two would share the 2 cores anyway
    page.launch(server_name=host, server_port=port, max_file_size=MAX_UPLOAD, show_error=True, ssr_mode=False,
                footer_links=[], quiet=True)
