from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def kinds_from_is_chat(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Before kinds, a model was a chat model or not; the only other kind served then was embeddings.
    apps.get_model("catalogue", "LanguageModel").objects.filter(is_chat=False).update(kind="embedding")


def is_chat_from_kinds(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("catalogue", "LanguageModel").objects.exclude(kind="chat").update(is_chat=False)


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0003_deployments")]

    operations = [
        migrations.AddField(
            model_name="languagemodel",
            name="kind",
            field=models.CharField(
                choices=[
                    ("chat", "chat (messages in, a reply out: /v1/chat/completions)"),
                    ("text", "text (a prompt continued: /v1/completions)"),
                    ("embedding", "embedding (/v1/embeddings)"),
                ],
                default="chat",
                max_length=20,
            ),
        ),
        migrations.RunPython(kinds_from_is_chat, is_chat_from_kinds),
        migrations.RemoveField(model_name="languagemodel", name="is_chat"),
        migrations.AddField(
            model_name="languagemodel",
            name="vision",
            field=models.BooleanField(default=False, help_text="Accepts images in messages"),
        ),
        migrations.AddField(
            model_name="languagemodel",
            name="tools",
            field=models.BooleanField(default=True, help_text="Accepts tools (function calling)"),
        ),
        migrations.AddField(
            model_name="languagemodel",
            name="reasoning",
            field=models.BooleanField(default=False, help_text="Thinks before answering (reasoning text)"),
        ),
        migrations.AddField(
            model_name="languagemodel",
            name="json_output",
            field=models.BooleanField(
                default=True, help_text="Accepts response_format json_object / json_schema"
            ),
        ),
    ]
