from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0007_merge_attachments"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("status", "streaming")), fields=["updated_at"], name="message_streaming"
            ),
        ),
    ]
