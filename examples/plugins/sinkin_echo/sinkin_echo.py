"""An example SinkIn Lab plugin: the ``echo`` provider, which "generates" a plain image showing the
prompt (returned as bytes, no URL), with an option of its own (``background``), and a
``sinkin echo-models`` command. It imports nothing but ``sinkin_pipeline``. See docs/plugins.md."""

import io
import uuid

import click
from PIL import Image, ImageDraw

from sinkin_pipeline import Field, GeneratedImage, InferenceResult, Provider, ServiceError, hookimpl

COLOURS = {"blue": (40, 90, 160), "red": (160, 50, 40), "green": (40, 140, 70)}


class EchoProvider(Provider):
    name = "echo"
    free = True  # estimates are 0 credits
    # a setting SinkIn does not have: a spec may say `background: [blue, red]`
    options = [
        Field(
            "background",
            "choice",
            default="blue",
            choices=tuple(COLOURS),
            help="the colour behind the prompt",
        )
    ]

    def inference(self, payload, init_image=None):
        if not payload.get("prompt"):
            raise ServiceError("prompt is required")  # shown to the user verbatim
        count = int(payload.get("num_images") or 1)
        width, height = int(payload.get("width", 512)), int(payload.get("height", 768))
        colour = COLOURS[payload.get("background", "blue")]
        images = []
        for index in range(count):
            image = Image.new("RGB", (width, height), tuple(min(255, c + 40 * index) for c in colour))
            ImageDraw.Draw(image).text((10, 10), payload["prompt"], fill="white")
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            images.append(GeneratedImage(data=buffer.getvalue(), seed=payload.get("seed")))
        return InferenceResult(
            images=images,
            credit_cost=0.0,
            inf_id=uuid.uuid4().hex[:14],
            raw={"background": payload.get("background")},
        )

    def models(self):
        return {"models": [{"id": "echo-1", "title": "Echo"}], "loras": [], "video_models": []}


@hookimpl
def register_providers(register):
    register(EchoProvider)


@hookimpl
def register_commands(cli):
    @cli.command(name="echo-models")
    def echo_models():
        """List the echo provider's models."""
        for model in EchoProvider().models()["models"]:
            click.echo("{} {}".format(model["id"], model["title"]))
