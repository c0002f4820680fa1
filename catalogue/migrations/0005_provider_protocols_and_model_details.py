from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0004_kinds_and_capabilities")]

    operations = [
        migrations.AddField(
            model_name="provider",
            name="kind",
            field=models.CharField(
                choices=[("openai", "OpenAI-compatible"), ("anthropic", "Anthropic Messages API")],
                default="openai",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="provider",
            name="responses_api",
            field=models.BooleanField(
                default=False,
                help_text="Speaks OpenAI's Responses API: /v1/responses requests go to it as they are",
            ),
        ),
        migrations.AddField(
            model_name="provider",
            name="output_cap_param",
            field=models.CharField(
                choices=[("max_tokens", "max_tokens"), ("max_completion_tokens", "max_completion_tokens")],
                default="max_tokens",
                help_text="The name under which this upstream takes the output cap",
                max_length=30,
            ),
        ),
        migrations.AddField(model_name="languagemodel", name="creator", field=models.CharField(blank=True, max_length=100)),
        migrations.AddField(model_name="languagemodel", name="license_name", field=models.CharField(blank=True, max_length=100)),
        migrations.AddField(model_name="languagemodel", name="license_url", field=models.URLField(blank=True)),
        migrations.AddField(model_name="languagemodel", name="docs_url", field=models.URLField(blank=True)),
        migrations.AddField(model_name="languagemodel", name="prompt_guide_url", field=models.URLField(blank=True)),
    ]
