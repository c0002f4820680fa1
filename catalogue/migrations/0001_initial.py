# Moves Provider and LanguageModel from the gateway app to this one. The tables exist already
# (gateway's migrations created them): the models are adopted into this app's state as they are,
# then their tables are renamed, and content types follow so permissions and admin history stay.

import django.db.models.deletion
import django.utils.timezone
from decimal import Decimal
from django.db import migrations, models


def move_content_types(apps, schema_editor, old="gateway", new="catalogue"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in ("provider", "languagemodel"):
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, old="catalogue", new="gateway")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("gateway", "0002_limit"),
        # Every migration written against the gateway's tables runs before they are renamed.
        ("conversations", "0002_message_updated_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Provider',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.SlugField(max_length=64, unique=True)),
                        ('base_url', models.URLField(help_text='Up to and including /v1, e.g. https://api.openai.com/v1', max_length=500)),
                        ('api_key_env', models.CharField(blank=True, max_length=100)),
                        ('api_key_encrypted', models.TextField(blank=True, editable=False)),
                        ('connect_timeout', models.FloatField(default=5.0)),
                        ('read_timeout', models.FloatField(default=120.0)),
                        ('enabled', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        'db_table': 'gateway_provider',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='LanguageModel',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('public_id', models.CharField(help_text="The id clients send; may contain '/'", max_length=200, unique=True)),
                        ('upstream_model', models.CharField(max_length=200)),
                        ('context_length', models.PositiveIntegerField(default=4096)),
                        ('max_output_tokens', models.PositiveIntegerField(default=1024)),
                        ('is_chat', models.BooleanField(default=True)),
                        ('owned_by', models.CharField(blank=True, max_length=100)),
                        ('description', models.TextField(blank=True)),
                        ('category', models.CharField(blank=True, max_length=50)),
                        ('input_price_per_million', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=12)),
                        ('output_price_per_million', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=12)),
                        ('enabled', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('provider', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='models', to='catalogue.provider')),
                    ],
                    options={
                        'db_table': 'gateway_languagemodel',
                        'verbose_name': 'model',
                        'ordering': ['public_id'],
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
