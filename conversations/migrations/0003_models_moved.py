# The catalogue's models moved from the gateway app to `catalogue`: the foreign keys follow them.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("catalogue", "0001_initial"),
        ("conversations", "0002_message_updated_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="conversation",
            name="model",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to="catalogue.languagemodel"
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="model",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to="catalogue.languagemodel"
            ),
        ),
    ]
