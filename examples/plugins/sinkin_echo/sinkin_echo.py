"""An example SinkIn Lab plugin: the ``echo`` provider, which "generates" a plain image showing the
prompt, and a ``sinkin echo-models`` command. See docs/plugins.md."""
import io
import uuid

import click
from PIL import Image, ImageDraw

from sinkin_pipeline import hookimpl
from sinkin_pipeline.providers import DownloadError, Provider, ServiceError


class EchoProvider(Provider):
    name = "echo"
    free = True  # estimates are 0 credits

    def inference(self, payload, init_image=None):
        if not payload.get("prompt"):
            raise ServiceError("prompt is required")  # shown to the user verbatim
        count = int(payload.get("num_images") or 1)
        size = "{}x{}".format(payload.get("width", 512), payload.get("height", 768))
        urls = ["echo://{}/{}/{}".format(size, i, payload["prompt"]) for i in range(count)]
        return {"error_code": 0, "images": urls, "credit_cost": 0, "inf_id": uuid.uuid4().hex[:14]}

    def download(self, url):
        if not url.startswith("echo://"):
            raise DownloadError("not an echo URL")
        size, index, prompt = url[len("echo://"):].split("/", 2)
        width, height = (int(v) for v in size.split("x"))
        image = Image.new("RGB", (width, height), (40 + 50 * int(index) % 200, 90, 160))
        ImageDraw.Draw(image).text((10, 10), prompt, fill="white")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def models(self):
        return {"models": [{"id": "echo-1", "title": "Echo"}], "loras": [], "video_models": []}


@hookimpl
def register_providers(register):
    register("echo", EchoProvider)


@hookimpl
def register_commands(cli):
    @cli.command(name="echo-models")
    def echo_models():
        """List the echo provider's models."""
        for model in EchoProvider().models()["models"]:
            click.echo("{} {}".format(model["id"], model["title"]))
